"""The Qt binding itself: a release that corrupts Python's reference counts aborts the app after hours."""

from __future__ import annotations

import importlib
import linecache
import sys
import uuid
from pathlib import Path

from PySide6.QtWidgets import QApplication, QLabel


def test_qt_calls_returning_nothing_keep_none_alive(qapp: QApplication) -> None:
    # PySide6 6.12.0 on Python 3.11 drops one reference to None per call of a void method: a window
    # updating its progress label ran None's count down and aborted ("deallocating None"). On Python
    # 3.12+ None is immortal and its count does not move at all.
    label = QLabel()
    before = sys.getrefcount(None)
    for n in range(2000):
        label.setText(str(n))
        qapp.processEvents()
    assert sys.getrefcount(None) >= before - 50, (before, sys.getrefcount(None))


def test_modules_imported_after_qt_leave_no_source_text_in_memory(tmp_path: Path, monkeypatch) -> None:
    # PySide6's import hook read every later module's source with inspect.getsource, and linecache kept
    # it all: 28 MB of the window's memory once Chroma and ONNX Runtime were imported.
    import sealroom.desktop  # noqa: F401  # the package changes the hook before any widget exists

    tag = uuid.uuid4().hex[:12]
    plain, qt = f"sealroom_probe_plain_{tag}", f"sealroom_probe_qt_{tag}"
    (tmp_path / f"{plain}.py").write_text("VALUE = 1\n")
    (tmp_path / f"{qt}.py").write_text("import PySide6.QtCore\n\nVALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plain_module, qt_module = importlib.import_module(plain), importlib.import_module(qt)
    # the check the hook runs on every module it sees imported, asked directly (whether the hook itself
    # fires for an import depends on PySide6's internals)
    check = sys.modules["shibokensupport.feature"]._mod_uses_pyside
    assert (check(plain_module), check(qt_module)) == (False, True)  # still tells them apart
    assert not [name for name in linecache.cache if tag in name]  # ... and keeps no source
