"""The Qt binding itself: a release that corrupts Python's reference counts aborts the app after hours."""

from __future__ import annotations

import sys

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
