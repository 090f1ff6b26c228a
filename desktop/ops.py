"""Background operations: the one way the window runs engine work (the Anki QueryOp pattern).

`Op(parent, op, success=...).run()` calls `op(report)` on a worker thread of its lane and
delivers the result, an error, or each `report(value)` back on the GUI thread. `op` gets
what it needs as arguments and never touches a widget. Lanes are single worker threads,
so work of one kind is serialised (indexing, answering, quick catalog reads) while the
kinds run side by side.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from sealroom.core.runtime.errors import SealroomError, is_disk_full

log = logging.getLogger("sealroom.desktop")

LANES = ("index", "answer", "query", "export")
_executors: dict[str, ThreadPoolExecutor] = {}


class _Relay(QObject):
    """Lives on the GUI thread; a signal emitted from any thread runs the callable here."""

    deliver = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.deliver.connect(self._run, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _run(self, call: Callable[[], None]) -> None:
        call()


_relay: _Relay | None = None
_open = False  # after shutdown(), late results are dropped: their engine is closed


def on_gui_thread(call: Callable[[], None]) -> None:
    """Run `call` on the GUI thread (from any thread), after the current event."""
    global _relay
    if _relay is None:
        raise RuntimeError("ops.install() was not called on the GUI thread")
    if _open:
        _relay.deliver.emit(lambda: call() if _open else None)


def install() -> None:
    """Create the relay; call once on the GUI thread after the QApplication exists."""
    global _relay, _open
    if _relay is None:
        _relay = _Relay()
    _open = True


def shutdown(wait: bool = True) -> None:
    global _open
    _open = False
    for executor in _executors.values():
        executor.shutdown(wait=wait, cancel_futures=True)
    _executors.clear()


def _executor(lane: str) -> ThreadPoolExecutor:
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane}")
    if lane not in _executors:
        _executors[lane] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sealroom-{lane}")
    return _executors[lane]


class Op:
    def __init__(
        self,
        parent: QWidget | None,
        op: Callable[[Callable[[Any], None]], Any],
        success: Callable[[Any], None] | None = None,
        failure: Callable[[BaseException], None] | None = None,
        progress: Callable[[Any], None] | None = None,
        lane: str = "query",
    ) -> None:
        self.parent = parent
        self.op = op
        self.success = success
        self.failure = failure
        self.progress = progress
        self.lane = lane
        self.done = threading.Event()

    def run(self) -> Future[Any]:
        return _executor(self.lane).submit(self._work)

    def _report(self, value: Any) -> None:
        if self.progress is not None:
            progress = self.progress
            on_gui_thread(lambda: progress(value))

    def _work(self) -> Any:
        try:
            result = self.op(self._report)
        except BaseException as exc:  # every error goes to the GUI thread, none is lost
            if not isinstance(exc, SealroomError):
                log.exception("background operation failed")
            on_gui_thread(lambda exc=exc: self._finish_error(exc))  # type: ignore[misc]
            raise
        on_gui_thread(lambda: self._finish(result))
        return result

    def _finish(self, result: Any) -> None:
        self.done.set()
        if self.success is not None:
            self.success(result)

    def _finish_error(self, exc: BaseException) -> None:
        self.done.set()
        if self.failure is not None:
            self.failure(exc)
        else:
            show_error(self.parent, exc)


def describe(exc: BaseException) -> str:
    """A message fit for a user: ours as written, others with their type."""
    if isinstance(exc, SealroomError):
        return str(exc)
    if is_disk_full(exc):
        return "The disk is full: free some space. Nothing indexed so far is lost; indexing resumes where it stopped."
    return f"Something went wrong ({type(exc).__name__}: {exc}). The details are in the log."


def show_error(parent: QWidget | None, exc: BaseException) -> None:
    """The one place an error reaches the user."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Sealroom", describe(exc), parent=parent)
    box.setAccessibleName("Error message")
    box.open()
