"""The engine, hosted in the app's process, seen by widgets as Qt signals.

One process owns a data directory, so the window runs the Engine itself: the watch loop
on the `index` lane, questions and the model on the `answer` lane, catalog reads and
searches on the `query` lane. Widgets call these methods and listen to the signals;
nothing here touches a widget.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from sealroom.core.answer.pipeline import Answer
from sealroom.core.engine import Engine
from sealroom.core.protocols import DEFAULT_WORKSPACE, Hit
from sealroom.core.runtime import control, logs

from .ops import Op, describe, on_gui_thread


class EngineHost(QObject):
    started = Signal()  # the engine is open: folders, chats and counts can be read
    start_failed = Signal(str)
    progress = Signal(int, int, str, str)  # files done, total, current file ("" when idle), how far in it
    indexing_done = Signal()  # a scan-and-index pass finished
    file_event = Signal(dict)  # indexed / failed / removed, from the scanner and indexer
    model_state = Signal(str)  # not loaded, loading, ready: <file>, failed: <why>
    folders_changed = Signal()
    watch_failed = Signal(str)

    def __init__(self, home: Path | None = None) -> None:
        super().__init__()
        self.home = home
        self.engine: Engine | None = None
        self.workspace = DEFAULT_WORKSPACE
        self._stop = threading.Event()
        self._stop_answer = threading.Event()
        self.indexing = False
        self.search_notice = ""  # what the last search could not reach (team mode): said beside it
        self.model = "not loaded"
        self.window_visible_ms: int | None = None
        self.control: control.ControlServer | None = None

    # --- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Open the engine off the GUI thread, then start watching and load the model."""

        def opened(engine: Engine) -> None:
            self.engine = engine
            logs.event("desktop started", window_visible_ms=self.window_visible_ms)
            engine.emit = lambda event: on_gui_thread(lambda: self.file_event.emit(event))
            self.started.emit()
            self.start_watch()
            self.load_model()
            self.serve_commands()

        Op(None, lambda _: Engine(self.home, purpose="sealroom-desktop"), opened, self._failed_start).run()

    def _failed_start(self, exc: BaseException) -> None:
        self.start_failed.emit(describe(exc))

    def start_watch(self) -> None:
        engine = self.require_engine()

        def progress(done: int, total: int, path: str | None, detail: str = "") -> None:
            on_gui_thread(lambda: self._progress(done, total, path or "", detail))

        def watch(_: Callable[[Any], None]) -> None:
            engine.watch(on_ready=None, stop=self._stop, progress=progress)

        def stopped(exc: BaseException) -> None:
            self.indexing = False
            if not self._stop.is_set():
                self.watch_failed.emit(describe(exc))

        Op(None, watch, success=lambda _: None, failure=stopped, lane="index").run()

    def _progress(self, done: int, total: int, path: str, detail: str) -> None:
        was = self.indexing
        self.indexing = bool(path)
        self.progress.emit(done, total, path, detail)
        if was and not self.indexing:
            self.indexing_done.emit()

    def load_model(self) -> None:
        engine = self.require_engine()
        self._set_model("loading")
        Op(
            None,
            lambda _: engine.llm() and engine.model_state,
            success=self._set_model,
            failure=lambda exc: self._set_model(f"failed: {describe(exc)}"),
            lane="answer",
        ).run()

    @property
    def running_model(self) -> str:
        """The file of the chat model loaded and ready ('' before)."""
        return self.model.removeprefix("ready: ") if self.model.startswith("ready: ") else ""

    def _set_model(self, state: str) -> None:
        self.model = state
        self.model_state.emit(state)

    def serve_commands(self) -> None:
        """Run the command line's commands while the window owns the data directory (`sealroom status`,
        `search`, `ask`, `add` ... forwarded over core/runtime/control.py's socket, see cli.run)."""
        engine = self.require_engine()
        server = control.ControlServer(engine.home, self._run_command)
        try:
            server.start()
        except (OSError, control.ControlError) as exc:  # the window works on; the CLI is refused as before
            logs.problem("command line not served", reason=str(exc))
            return
        self.control = server

    def _run_command(self, request: control.Request) -> int:
        """On a connection's thread: run a forwarded command on the lane of its kind (an `ask` waits for the
        window's answer under way) and wait for it; the window refreshes after one that changed something."""
        from sealroom.core import cli

        engine, command = self.engine, cli.command_of(request.argv)
        if engine is None:
            print("sealroom: Sealroom is quitting; run the command again in a moment", file=sys.stderr)
            return 1
        work = control.carry(lambda: cli.serve(engine, request.argv, request.cwd))

        def done(_: int) -> None:
            if command == "add":
                engine.rescan()
            if command in ("add", "remove", "ask", "feedback"):
                self.folders_changed.emit()  # folders, counts and chats read again

        lane = "answer" if command == "ask" else "query"
        future = Op(None, lambda _: work(), done, failure=lambda _: None, lane=lane).run()
        try:
            return int(future.result())
        except CancelledError:
            print("sealroom: Sealroom quit before the command ran", file=sys.stderr)
            return 1

    def shutdown(self) -> None:
        """Stop watching and generating, then close the engine (its data stays consistent)."""
        self._stop.set()
        engine, self.engine = self.engine, None
        if engine is None:
            return
        engine.paused.clear()
        engine.cancel()
        if self.control is not None:  # no command starts now; one under way has a moment to end
            self.control.stop(wait=5)
            self.control = None
        from . import ops

        ops.shutdown(wait=False)
        closer = threading.Thread(target=engine.close, daemon=True)
        closer.start()
        closer.join(10)

    @property
    def closing(self) -> threading.Event:
        """Set when the window shuts down: long background work (the drift check) stops at it."""
        return self._stop

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("the engine is not open yet")
        return self.engine

    # --- folders and indexing -----------------------------------------------------------
    def add_folder(self, path: str, done: Callable[[str], None] | None = None) -> None:
        engine, workspace = self.require_engine(), self.workspace

        def added(folder: str) -> None:
            engine.rescan()
            self.folders_changed.emit()
            if done:
                done(folder)

        Op(None, lambda _: engine.add_folder(path, workspace), added).run()

    def remove_folder(self, path: str) -> None:
        engine = self.require_engine()
        Op(None, lambda _: engine.remove_folder(path), lambda _: self.folders_changed.emit()).run()

    def retry_failed(self) -> None:
        engine = self.require_engine()
        Op(None, lambda _: engine.retry_failed(), lambda _: engine.rescan()).run()

    def set_paused(self, paused: bool) -> None:
        engine = self.require_engine()
        if paused:
            engine.pause()
        else:
            engine.resume()

    def read(self, op: Callable[[Engine], Any], success: Callable[[Any], None]) -> None:
        """Run a quick read of the engine (catalog, status) off the GUI thread."""
        if self.engine is None:
            return
        engine = self.engine
        Op(None, lambda _: op(engine), success).run()

    # --- asking -----------------------------------------------------------------------
    def ask(
        self,
        question: str,
        chat_id: int | None,
        on_token: Callable[[str], None],
        success: Callable[[Answer], None],
        failure: Callable[[BaseException], None],
    ) -> None:
        engine, workspace = self.require_engine(), self.workspace
        loaded = self.model.startswith("ready")

        stop = self._stop_answer = threading.Event()  # set by stop_answer(), even before the op starts

        def ask(report: Callable[[Any], None]) -> Answer:
            return engine.ask(question, chat_id, report, workspace=workspace, stop=stop, origin="window")

        def answered(answer: Answer) -> None:
            if not loaded and answer.called_model:
                self._set_model(engine.model_state)
            success(answer)

        Op(None, ask, answered, failure, progress=on_token, lane="answer").run()

    def search(
        self, query: str, success: Callable[[list[Hit]], None], filters: dict[str, Any] | None = None
    ) -> None:
        """Passages of the workspace's folders, or of the `filters`' folder, types and days (modified
        within so many days); the filters apply inside the retrieval, so k passages still come back."""
        engine, workspace, filters = self.require_engine(), self.workspace, filters or {}

        def search(_: Any) -> tuple[list[Hit], str]:
            folders = [filters["folder"]] if filters.get("folder") else engine.folders(workspace)
            since = time.time() - filters["days"] * 86400 if filters.get("days") else None
            hits = engine.search_in(query, None, folders, filters.get("types") or None, "", since)
            return hits, engine.answering.notice

        def found(result: tuple[list[Hit], str]) -> None:
            self.search_notice = result[1]  # what this search could not reach (team mode), for the window
            success(result[0])

        Op(None, search, found).run()

    def stop_answer(self) -> None:
        self._stop_answer.set()
        if self.engine is not None:
            self.engine.cancel()
