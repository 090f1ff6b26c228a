"""Under Xvfb (a real X server): every screen after a real question, checked from geometry (no text cut, no
widget outside the window or over another, pane widths that hold while answering and switching chats), on
a small laptop with text at 150 % and on a full-HD screen. The PNGs are artefacts to look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from tests.conftest import ROOT
from tests.desktop.screens import under_xvfb

pytestmark = pytest.mark.slow

ARTEFACTS = Path(os.environ.get("SEALROOM_ARTEFACTS", ROOT / "artefacts"))


@pytest.mark.parametrize(("size", "scale"), [("1366x768", "1.5"), ("1920x1080", "1.0")])
def test_every_screen_fits_at_this_size(size: str, scale: str, home: Path, docs: Path, capfd):
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (make test installs it on Debian)")
    out = ARTEFACTS / "screenshots" / f"{size}-{scale}"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_TEXT_SCALE=scale)
    code = under_xvfb(size, str(docs), str(out), env)
    printed = capfd.readouterr().out
    assert code == 0, printed[-3000:]
    assert "0 problems" in printed
    width, height = (int(n) for n in size.split("x"))
    names = {p.stem for p in out.glob("*.png")}
    assert {"welcome", "answer", "search-only", "settings", "audit", "health", "theme-dark"} <= names
    image = QImage(str(out / "answer.png"))
    assert (image.width(), image.height()) == (width, height)
    colours = {image.pixel(x, y) for x in range(0, width, 37) for y in range(0, height, 29)}
    assert len(colours) > 5  # a drawn window, not a blank screen
