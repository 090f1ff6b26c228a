"""Under Xvfb (a real X server), the window after a real question, saved as a PNG artefact to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

ARTEFACTS = Path(os.environ.get("SEALROOM_ARTEFACTS", ROOT / "artefacts"))


@pytest.fixture
def xvfb() -> str:
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (make test installs it on Debian)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        display = f":{f.readline().strip()}"
    yield display
    proc.terminate()
    proc.wait(10)


def test_screenshot_of_the_window_after_a_real_question(xvfb: str, home: Path, docs: Path):
    out = ARTEFACTS / "window-after-question.png"
    out.unlink(missing_ok=True)
    env = dict(os.environ, DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", SEALROOM_HOME=str(home))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.desktop.screenshot_run", str(docs), str(out)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"\n{proc.stdout.strip()}")
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1440, 900)
    colours = {image.pixel(x, y) for x in range(0, 1440, 37) for y in range(0, 900, 29)}
    assert len(colours) > 5  # a drawn window, not a blank screen
