"""The real window on the real engine, offscreen (QT_QPA_PLATFORM=offscreen unless a display is chosen)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QElapsedTimer, QObject, QTimer

from sealroom.desktop import ops
from sealroom.desktop.host import EngineHost
from sealroom.desktop.window import MainWindow
from tests.desktop.screens import sample_folder

WAIT_MS = 300_000


class Heartbeat(QObject):
    """A 10 ms GUI-thread timer; the longest gap between its ticks is the longest stall."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = QElapsedTimer()
        self.timer = QTimer(self)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.longest_ms = 0
        self.ticks = 0

    def start(self) -> None:
        self.longest_ms, self.ticks = 0, 0
        self.clock.start()
        self.timer.start()

    def _tick(self) -> None:
        self.longest_ms = max(self.longest_ms, self.clock.restart())
        self.ticks += 1

    def stop(self) -> int:
        self.timer.stop()
        return self.longest_ms


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small folder: readable PDFs and a DOCX, an encrypted PDF, an image-only PDF and a broken one."""
    return sample_folder(tmp_path / "docs")


@pytest.fixture
def window(home: Path, qtbot) -> Iterator[MainWindow]:
    ops.install()
    host = EngineHost(home)
    win = MainWindow(host)
    win.tray = None  # closing must quit in tests, whatever the platform offers
    qtbot.addWidget(win)
    win.show()
    host.start()
    qtbot.waitUntil(lambda: host.engine is not None, timeout=30_000)
    yield win
    win.quitting = True
    host.shutdown()
