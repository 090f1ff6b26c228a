"""The engine: one object that owns a data directory and offers every operation.

Construction takes the data-directory lock and opens the catalog; the embedder,
Chroma, the parser pool and the LLM start on first use (`warm_up` style), so
`status` and `folders` stay fast. The CLI and the desktop app are thin layers on this.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import logs, offline
from .answer import (
    NOT_IN_SOURCES,
    STOP,
    chat_messages,
    check_citations,
    completion_prompt,
    fit_sources,
    match_sources,
)
from .catalog import DEFAULT_WORKSPACE, Catalog
from .config import Settings, load_settings
from .errors import SealroomError, UsageError
from .indexer import Indexer, IndexSummary, Progress, embedding_text
from .lock import DataDirLock
from .parse_pool import ParserPool
from .paths import data_dir
from .retriever import Hit, Retriever, keyword_query
from .scanner import EventSink, Scanner
from .vectorstore import VectorStore


@dataclass
class WatchState:
    """What `watch` is doing, for diagnostics: folders, observers, last run, errors."""

    folders: list[str] = field(default_factory=list)
    polling: list[str] = field(default_factory=list)
    watcher: Any = None
    last_index: float | None = None
    errors: list[str] = field(default_factory=list)

    def started(self, folders: list[str], watcher: Any) -> None:
        self.folders, self.polling, self.watcher = folders, list(watcher.polling), watcher

    @property
    def running(self) -> bool:
        return self.watcher is not None

    @property
    def healthy(self) -> bool:
        return self.watcher is not None and self.watcher.healthy()


@dataclass
class Answer:
    text: str
    citations: list[dict[str, Any]]
    sources: list[Hit]
    model: str
    chat_id: int
    timings: dict[str, float]
    invalid_citations: list[int] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    called_model: bool = True
    finish_reason: str = "stop"
    matched_citations: list[int] = field(default_factory=list)


class Engine:
    def __init__(self, home: Path | None = None, purpose: str = "", settings: Settings | None = None) -> None:
        self.home = home or data_dir()
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.settings = settings or load_settings()
        offline.enforce(self.settings.allowed_hosts)
        self.log_path = logs.setup(self.home, self.settings.log_level)
        self._lock = DataDirLock(self.home, purpose)
        self._lock.acquire()
        self.catalog = Catalog(self.home / "catalog.sqlite")
        self._embedder: Any = None
        self._store: VectorStore | None = None
        self._pool: ParserPool | None = None
        self._llm: Any = None
        self._model_name = ""
        self.emit: EventSink = lambda event: None
        self._index_lock = threading.Lock()
        self._start_lock = threading.RLock()  # components start once, whichever thread asks first
        self._llm_lock = threading.Lock()
        self.paused = threading.Event()  # see pause()
        self._rescan = threading.Event()
        self._stop_answer = threading.Event()  # the stop switch of the answer under way
        self.watch_state = WatchState()

    # --- components, started on first use ---------------------------------------------
    @property
    def embedder(self) -> Any:
        with self._start_lock:
            if self._embedder is None:
                from sealroom.models.embedding import OnnxEmbedder

                self._embedder = OnnxEmbedder(threads=self.settings.n_threads)
                self._embedder.warm_up()
            return self._embedder

    @property
    def store(self) -> VectorStore:
        with self._start_lock:
            if self._store is None:
                with logs.stage("open vector store"):
                    self._store = VectorStore(self.home / "chroma", self.embedder)
                recorded = self.catalog.get_meta("embedding_model")
                if recorded and recorded != self.embedder.model_id:
                    raise SealroomError(
                        f"the index was built with embedding model {recorded}; run `sealroom repair` to rebuild it"
                    )
                self.catalog.set_meta("embedding_model", self.embedder.model_id)
            return self._store

    @property
    def pool(self) -> ParserPool:
        with self._start_lock:
            if self._pool is None:
                s = self.settings
                self._pool = ParserPool(s.parser_processes, s.parse_timeout_s, s.parse_memory_mb)
            return self._pool

    def llm(self) -> Any:
        with self._llm_lock:
            if self._llm is None:
                from sealroom.models.catalogue import ModelCatalogue
                from sealroom.models.llm import LlmWorker

                entry = ModelCatalogue(self.home, self.settings.allowed_model_sha256).resolve(
                    self.settings.chat_model
                )
                self._model_name = Path(entry.path).name
                llm = LlmWorker(
                    Path(entry.path),
                    self.settings.n_ctx,
                    self.settings.n_threads,
                    log_path=self.home / "logs" / "llm-worker.log",
                )
                with logs.stage("load model", model=self._model_name):
                    llm.warm_up()
                self._llm = llm
            return self._llm

    @property
    def model_state(self) -> str:
        """'ready: <file>' once the chat model is loaded, else 'not loaded'."""
        return f"ready: {self._model_name}" if self._llm is not None else "not loaded"

    def unload_model(self) -> None:
        """Close the chat model so the next question loads it with the current settings."""
        with self._llm_lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings; a changed chat model, context or thread count reloads the model."""
        reload = any(
            getattr(settings, k) != getattr(self.settings, k) for k in ("chat_model", "n_ctx", "n_threads")
        )
        self.settings = settings
        logs.log.setLevel(settings.log_level.upper())
        if reload:
            self.unload_model()

    def close(self) -> None:
        if self._pool:
            self._pool.close()
        if self._llm:
            self._llm.close()
        self.catalog.close()
        self._lock.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- folders ----------------------------------------------------------------------
    def add_folder(self, folder: str, workspace: str = DEFAULT_WORKSPACE) -> str:
        path = os.path.abspath(os.path.expanduser(folder))
        if not os.path.isdir(path):
            raise UsageError(f"not a folder: {folder}")
        for known in self.folders():
            if path.startswith(known.rstrip(os.sep) + os.sep) or known.startswith(
                path.rstrip(os.sep) + os.sep
            ):
                raise UsageError(f"{path} overlaps the watched folder {known}")
        self.catalog.add_folder(path, workspace)
        return path

    def remove_folder(self, folder: str) -> str:
        path = os.path.abspath(os.path.expanduser(folder))
        if not self.catalog.remove_folder(path):
            raise UsageError(f"not a watched folder: {folder}")
        self.collect_garbage()
        return path

    def folders(self, workspace: str | None = None) -> list[str]:
        return [path for _, path in self.catalog.folders(workspace)]

    def remove_workspace(self, workspace: str) -> None:
        self.catalog.remove_workspace(workspace)
        self.collect_garbage()

    # --- indexing ---------------------------------------------------------------------
    def scanner(self) -> Scanner:
        return Scanner(self.catalog, self.settings.max_file_mb, self.emit)

    def indexer(self) -> Indexer:
        indexer = Indexer(self.catalog, self.store, self.embedder, self.pool, self.settings, self.emit)
        indexer.paused = self.paused
        return indexer

    def index(
        self,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        paths: set[str] | None = None,
    ) -> IndexSummary:
        """Scan (all folders, or just `paths`), index what is pending, collect garbage."""
        with self._index_lock:
            with logs.stage("scan", paths=len(paths) if paths else "all") as info:
                scan = self.scanner().scan_paths(paths) if paths is not None else self.scanner().scan_all()
                info.update(queued=scan.queued, reused=scan.reused, removed=scan.removed)
            self.emit(
                {"event": "scanned", "queued": scan.queued, "reused": scan.reused, "removed": scan.removed}
            )
            self._heal_vectors()
            from .parsers import PARSER_VERSION

            if self.catalog.get_meta("parser_version") != PARSER_VERSION:
                self.catalog.requeue("status IN ('failed', 'skipped') AND sha256 NOT LIKE 'large:%'")
                self.catalog.set_meta("parser_version", PARSER_VERSION)
            with logs.stage("index") as info:
                summary = self.indexer().run(progress, stop)
                info.update(files=summary.files, pages=summary.pages, chunks=summary.chunks)
            self.collect_garbage()
            return summary

    def retry_failed(self) -> int:
        """Queue the failed files again (after a fix, or once a file is readable)."""
        return self.catalog.requeue("status = 'failed'")

    def collect_garbage(self) -> int:
        """Delete chunks no indexed file refers to: from Chroma first, then the catalog."""
        orphans = self.catalog.orphan_chunk_ids()
        if orphans:
            self.store.delete(orphans)
            self.catalog.delete_chunks(orphans)
        return len(orphans)

    def _heal_vectors(self) -> None:
        """After a crash, Chroma may hold vectors the catalog never committed: drop them."""
        if self.store.count() == self.catalog.chunk_count():
            return
        known = {c.id for batch in self.catalog.all_chunks(2000) for c in batch}
        extra = list(self.store.ids() - known)
        if extra:
            self.store.delete(extra)
        if self.store.count() != self.catalog.chunk_count():
            self.repair()

    def repair(self, progress: Progress | None = None) -> int:
        """Rebuild the vector index from the catalog's chunks (no re-parsing)."""
        store = self.store
        store.reset()
        total = self.catalog.chunk_count()
        done = 0
        for batch in self.catalog.all_chunks(256):
            vectors = self.embedder.embed([embedding_text(c.heading, c.text) for c in batch])
            store.upsert([c.id for c in batch], vectors, [c.sha256 for c in batch])
            done += len(batch)
            if progress:
                progress(done, total, None)
        self.catalog.set_meta("embedding_model", self.embedder.model_id)
        logs.event("repair", chunks=done)
        return done

    def watch(
        self,
        on_ready: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Index, then keep the index fresh until `stop`; follows folders added or removed meanwhile."""
        from .watcher import FolderWatcher

        stop = stop or threading.Event()
        state = self.watch_state
        watcher: FolderWatcher | None = None
        next_reconcile = 0.0
        ready = False
        try:
            while not stop.is_set():
                folders = self.folders()
                if watcher is None or folders != state.folders:
                    if watcher:
                        watcher.stop()
                    # started before the scan, so nothing saved meanwhile is missed
                    watcher = FolderWatcher(folders, self.settings.debounce_s, self.settings.force_polling)
                    watcher.start()
                    state.started(folders, watcher)
                    next_reconcile = 0.0
                if self._rescan.is_set():
                    self._rescan.clear()
                    next_reconcile = 0.0
                try:
                    if time.monotonic() >= next_reconcile:
                        self.index(progress, stop)
                        next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
                        state.last_index = time.time()
                        if not ready and on_ready:
                            on_ready()
                        ready = True
                        continue
                    batch = watcher.wait_batch(timeout=min(1.0, max(0.0, next_reconcile - time.monotonic())))
                    if batch:
                        self.index(progress, stop, paths=batch)
                        state.last_index = time.time()
                except SealroomError:
                    raise
                except Exception as exc:  # a disk or store error: report it, keep watching, retry later
                    state.errors.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
                    logs.problem("watch error", error=True, detail=f"{type(exc).__name__}: {exc}")
                    next_reconcile = time.monotonic() + 10
                    stop.wait(1.0)
        finally:
            if watcher:
                watcher.stop()
            state.watcher = None

    def pause(self) -> None:
        """Indexing finishes the files in hand and leaves the rest pending (scans still run)."""
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()
        self.rescan()

    def rescan(self) -> None:
        """Ask a running `watch` to scan every folder now (after retry, or a folder added)."""
        self._rescan.set()

    # --- status -----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        files = self.catalog.files()
        return {
            "data_dir": str(self.home),
            "folders": self.folders(),
            "files": [{"path": f.path, "status": f.status, "reason": f.reason} for f in files],
            "counts": self.catalog.count_by_status(),
            "chunks": self.catalog.chunk_count(),
            "embedding_model": self.catalog.get_meta("embedding_model"),
        }

    # --- asking -----------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int | None = None,
        folder: str | None = None,
        types: list[str] | None = None,
        workspace: str | None = None,
    ) -> list[Hit]:
        """Passages for `query`, from one folder, or a workspace's folders, or everywhere."""
        folders = [folder] if folder else self.folders(workspace) if workspace else None
        if folders == []:
            return []
        with logs.stage("search", k=k) as info:
            hits = Retriever(self.catalog, self.store, self.embedder).search(
                query, k or self.settings.search_k, folders, types
            )
            info["hits"] = len(hits)
        return hits

    def relevant(self, hits: list[Hit], query: str) -> list[Hit]:
        """Hits that share a content word with the query, or are close enough in meaning."""
        has_terms = keyword_query(query) is not None
        return [
            h
            for h in hits
            if (h.keyword and has_terms) or (h.similarity or 0) >= self.settings.min_similarity
        ]

    def ask(
        self,
        question: str,
        chat_id: int | None = None,
        on_token: Callable[[str], None] | None = None,
        folder: str | None = None,
        types: list[str] | None = None,
        workspace: str | None = None,
        stop: threading.Event | None = None,
    ) -> Answer:
        """Answer from the sources; `stop` (or `cancel()`) ends the answer early, keeping what was said."""
        if not question.strip():
            raise UsageError("the question is empty")
        stop = stop or threading.Event()
        self._stop_answer = stop
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if chat_id is not None and not self.catalog.chat_exists(chat_id):
            raise UsageError(f"no chat with id {chat_id}")
        history = self.catalog.messages(chat_id) if chat_id is not None else []
        if chat_id is not None:
            workspace = workspace or self.catalog.chat_workspace(chat_id)
        else:
            chat_id = self.catalog.new_chat(question[:80], workspace or DEFAULT_WORKSPACE)
        previous = [text for role, text in history if role == "user"][-1:]
        hits = self.relevant(
            self.search(" ".join([*previous, question]), folder=folder, types=types, workspace=workspace),
            question,
        )
        timings["retrieve_ms"] = _ms(started)
        if not hits:
            answer = Answer(
                NOT_IN_SOURCES + " Nothing in your indexed documents matches this question.",
                [],
                [],
                "",
                chat_id,
                timings,
                called_model=False,
            )
            self._remember(chat_id, question, answer)
            return answer
        llm = self.llm()
        timings["load_model_ms"] = _ms(started) - timings["retrieve_ms"]
        if stop.is_set():  # stopped before or while the model loaded: nothing was generated
            answer = Answer("", [], hits, self._model_name, chat_id, timings, finish_reason="cancelled")
            self._remember(chat_id, question, answer)
            return answer
        budget = llm.n_ctx - self.settings.max_answer_tokens - 400  # rules, example, question
        sources = fit_sources(hits, budget, llm.count_tokens)
        pieces: list[str] = []
        cancel_sent = False
        gen_start = time.perf_counter()
        if llm.has_chat_template:
            stream = llm.generate(
                messages=chat_messages(question, sources, history), max_tokens=self.settings.max_answer_tokens
            )
        else:
            stream = llm.generate(
                prompt=completion_prompt(question, sources, history),
                max_tokens=self.settings.max_answer_tokens,
                stop=STOP,
            )
        for piece in stream:
            if not pieces:
                timings["first_token_ms"] = _ms(gen_start)
            pieces.append(piece)
            if on_token:
                on_token(piece)
            if stop.is_set() and not cancel_sent:
                llm.cancel()  # a cancel sent before generation began was not seen by the worker
                cancel_sent = True
        timings["generate_ms"] = _ms(gen_start)
        timings["tokens"] = len(pieces)
        if len(pieces) > 1:
            timings["tokens_per_s"] = round(
                (len(pieces) - 1) / max(1e-6, (timings["generate_ms"] - timings["first_token_ms"]) / 1000), 2
            )
        checked = match_sources(check_citations("".join(pieces), len(sources)), [h.text for h in sources])
        citations = [
            {
                "n": n,
                "path": sources[n - 1].path,
                "sha256": sources[n - 1].sha256,
                "seq": sources[n - 1].seq,
                "page": sources[n - 1].page,
                "text": sources[n - 1].text,
                "start": sources[n - 1].start,
                "end": sources[n - 1].end,
            }
            for n in checked.cited
        ]
        timings["total_ms"] = _ms(started)
        answer = Answer(
            checked.text or NOT_IN_SOURCES,
            citations,
            sources,
            self._model_name,
            chat_id,
            timings,
            checked.invalid,
            checked.unsupported,
            True,
            getattr(llm, "finish_reason", "stop"),
            checked.matched,
        )
        logs.event(
            "answered",
            chat_id=chat_id,
            sources=len(sources),
            cited=checked.cited,
            invalid=checked.invalid,
            **timings,
        )
        self._remember(chat_id, question, answer)
        return answer

    def _remember(self, chat_id: int, question: str, answer: Answer) -> None:
        self.catalog.add_message(chat_id, "user", question)
        self.catalog.add_message(chat_id, "assistant", answer.text, json.dumps(answer.citations))

    def passage(self, sha256: str, seq: int, start: int, end: int) -> Passage:
        """The passage [start, end) that begins in chunk `seq`, with the rest of its section around it."""
        chunks = self.catalog.chunks_of(sha256)
        first = next((c for c in chunks if c.seq == seq), None)
        if first is None:
            raise UsageError("that passage is no longer in the index (the file changed); ask again")
        # offsets count from the start of a section: the run of chunks with the same page and heading
        i = j = chunks.index(first)
        while i > 0 and (chunks[i - 1].page, chunks[i - 1].heading) == (first.page, first.heading):
            i -= 1
        while j + 1 < len(chunks) and (chunks[j + 1].page, chunks[j + 1].heading) == (
            first.page,
            first.heading,
        ):
            j += 1
        section = chunks[i : j + 1]
        return Passage(
            _span(section, section[0].start, start),
            _span(section, start, end),
            _span(section, end, section[-1].end),
            first.page,
        )

    def cancel(self) -> None:
        """Stop the answer under way (from any thread); what was generated so far is kept."""
        self._stop_answer.set()
        if self._llm:
            self._llm.cancel()

    # --- models -----------------------------------------------------------------------
    def models(self) -> list[Any]:
        from sealroom.models.catalogue import ModelCatalogue

        catalogue = ModelCatalogue(self.home, self.settings.allowed_model_sha256)
        if not any(e.default for e in catalogue.entries()):
            catalogue.default()
        return catalogue.entries()

    def add_model(self, path: str) -> Any:
        from sealroom.models.catalogue import ModelCatalogue

        return ModelCatalogue(self.home, self.settings.allowed_model_sha256).add(Path(path))


@dataclass
class Passage:
    before: str
    text: str
    after: str
    page: int | None


def _span(chunks: list[Any], start: int, end: int) -> str:
    """Document text [start, end) pieced together from overlapping chunks (offsets are per version)."""
    out: list[str] = []
    pos = start
    for c in chunks:
        if c.end <= pos or c.start >= end:
            continue
        if out and c.start > pos:
            out.append(" ")
        out.append(c.text[max(0, pos - c.start) : min(len(c.text), end - c.start)])
        pos = min(c.end, end)
    return "".join(out)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
