"""Indexing as a service: one index run (scan, heal, index, collect garbage) and the watch loop that keeps
the index fresh: watchers started before each scan, batches of changes indexed as they settle, a full
scan every `reconcile_interval_s`, a full disk waited out, other errors reported and retried."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sealroom.core.ingest import upkeep
from sealroom.core.ingest.indexer import Indexer, IndexSummary, Progress
from sealroom.core.ingest.parse_pool import ParserPool
from sealroom.core.ingest.parsers import PARSER_VERSION, REREAD_SUFFIXES
from sealroom.core.ingest.scanner import EventSink, Scanner
from sealroom.core.protocols import Embedder, VectorIndex
from sealroom.core.runtime import logs
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import DiskFull, SealroomError, is_disk_full
from sealroom.core.store.catalog import Catalog

if TYPE_CHECKING:
    from sealroom.core.ingest.watcher import FolderWatcher

RELEASE_AFTER_CHUNKS = 64  # an index run that embedded this many passages gives back its working memory


class Parts(Protocol):
    """What indexing uses, started on first use (`components.Components`)."""

    @property
    def embedder(self) -> Embedder: ...
    @property
    def store(self) -> VectorIndex: ...
    @property
    def pool(self) -> ParserPool: ...


@dataclass
class WatchState:
    """What `watch` is doing, for diagnostics: folders, observers, last run, errors."""

    folders: list[str] = field(default_factory=list)
    polling: list[str] = field(default_factory=list)
    watcher: FolderWatcher | None = None
    last_index: float | None = None
    errors: list[str] = field(default_factory=list)
    restarts: int = 0  # times a watcher that stopped was started again
    # the watch loop is running: it starts a watcher (again) by itself, so only its end stops watching
    looping: bool = False

    def started(self, folders: list[str], watcher: FolderWatcher) -> None:
        self.folders, self.polling, self.watcher = folders, list(watcher.polling), watcher

    @property
    def running(self) -> bool:
        return self.watcher is not None

    @property
    def healthy(self) -> bool:
        return self.watcher is not None and self.watcher.healthy()


class Indexing:
    def __init__(
        self, home: Path, catalog: Catalog, parts: Parts, settings: Callable[[], Settings], emit: EventSink
    ) -> None:
        self.home, self.catalog, self.parts, self.settings, self.emit = home, catalog, parts, settings, emit
        self.lock = threading.Lock()  # one index run at a time; held while it runs
        self.paused = threading.Event()  # see pause()
        self._rescan = threading.Event()
        self.state = WatchState()

    def scanner(self) -> Scanner:
        return Scanner(self.catalog, self.settings().max_file_mb, self.emit)

    def indexer(self) -> Indexer:
        p = self.parts
        indexer = Indexer(self.catalog, p.store, p.embedder, p.pool, self.settings(), self.emit)
        indexer.paused = self.paused
        return indexer

    def index(
        self,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        paths: set[str] | None = None,
    ) -> IndexSummary:
        """Scan (all folders, or just `paths`), index what is pending, collect garbage."""
        with self.lock:
            with logs.stage("scan", paths=len(paths) if paths else "all") as info:
                scan = self.scanner().scan_paths(paths) if paths is not None else self.scanner().scan_all()
                info.update(queued=scan.queued, reused=scan.reused, removed=scan.removed)
            self.emit(
                {"event": "scanned", "queued": scan.queued, "reused": scan.reused, "removed": scan.removed}
            )
            if scan.removed_paths:
                logs.forget(scan.removed_paths)  # a deleted document's name leaves the log files too
            upkeep.heal_vectors(self.catalog, self.parts.store, self.parts.embedder)
            self.catalog.requeue_for_parser(PARSER_VERSION, REREAD_SUFFIXES)
            with logs.stage("index") as info:
                summary = self.indexer().run(progress, stop)
                info.update(files=summary.files, pages=summary.pages, chunks=summary.chunks)
            self.collect_garbage()
            if summary.chunks >= RELEASE_AFTER_CHUNKS:  # chunking them loaded the embedder
                self.parts.embedder.release_memory()  # an idle app holds no arena sized for indexing
            return summary

    def collect_garbage(self) -> int:
        return upkeep.collect_garbage(self.catalog, self.parts.store)

    def watch(
        self,
        on_ready: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Index, then keep the index fresh until `stop`; follows folders added or removed meanwhile."""
        state = self.state
        state.looping = True  # until the finally below: a watcher (re)started by this loop is no alert
        watcher: FolderWatcher | None = None
        try:
            from sealroom.core.ingest.watcher import FolderWatcher

            stop = stop or threading.Event()
            next_reconcile = 0.0
            ready = False
            while not stop.is_set():
                folders = [path for _, path in self.catalog.folders(None)]
                stopped = watcher is not None and not watcher.healthy()
                if watcher is None or folders != state.folders or stopped:
                    if stopped:  # its thread died (an inotify limit, a vanished mount): start it again
                        state.restarts += 1
                        state.errors.append(
                            f"{time.strftime('%H:%M:%S')} the folder watcher stopped; restarted"
                        )
                        logs.problem("watcher restarted", error=True)
                    if watcher:
                        watcher.stop()
                    # started before the scan, so nothing saved meanwhile is missed
                    watcher = FolderWatcher(
                        folders, self.settings().debounce_s, self.settings().force_polling
                    )
                    watcher.start()
                    state.started(folders, watcher)
                    next_reconcile = 0.0
                if self._rescan.is_set():
                    self._rescan.clear()
                    next_reconcile = 0.0
                try:
                    if time.monotonic() >= next_reconcile:
                        self.index(progress, stop)
                        next_reconcile = time.monotonic() + self.settings().reconcile_interval_s
                        state.last_index = time.time()
                        if not ready and on_ready:
                            on_ready()
                        ready = True
                        continue
                    batch = watcher.wait_batch(timeout=min(1.0, max(0.0, next_reconcile - time.monotonic())))
                    if batch:
                        self.index(progress, stop, paths=batch)
                        state.last_index = time.time()
                except SealroomError as exc:
                    if not is_disk_full(exc):
                        raise
                    self._wait_for_space(stop)
                except Exception as exc:  # a disk or store error: report it, keep watching, retry later
                    if is_disk_full(exc):
                        self._wait_for_space(stop)
                        continue
                    state.errors.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
                    logs.problem("watch error", error=True, detail=f"{type(exc).__name__}: {exc}")
                    next_reconcile = time.monotonic() + 10
                    stop.wait(1.0)
        finally:
            state.looping = False
            if watcher:
                watcher.stop()
            state.watcher = None

    def _wait_for_space(self, stop: threading.Event) -> None:
        """The disk is full: say so once, then look again every 30 s; indexing resumes when there is room."""
        errors, message = self.state.errors, str(DiskFull(self.home))
        if not errors or not errors[-1].endswith(message):
            errors.append(f"{time.strftime('%H:%M:%S')} {message}")
            logs.problem("disk full", error=True)
        self.emit({"event": "disk full", "message": message})
        stop.wait(30.0)

    def pause(self) -> None:
        """Indexing finishes the files in hand and leaves the rest pending (scans still run)."""
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()
        self.rescan()

    def rescan(self) -> None:
        """Ask a running `watch` to scan every folder now (after retry, or a folder added)."""
        self._rescan.set()
