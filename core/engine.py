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
from .answer import NOT_IN_SOURCES, STOP, chat_messages, check_citations, completion_prompt, fit_sources
from .catalog import Catalog
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


class Engine:
    def __init__(self, home: Path | None = None, purpose: str = "", settings: Settings | None = None) -> None:
        self.home = home or data_dir()
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

    # --- components, started on first use ---------------------------------------------
    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from sealroom.models.embedding import OnnxEmbedder

            self._embedder = OnnxEmbedder(threads=self.settings.n_threads)
            self._embedder.warm_up()
        return self._embedder

    @property
    def store(self) -> VectorStore:
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
        if self._pool is None:
            s = self.settings
            self._pool = ParserPool(s.parser_processes, s.parse_timeout_s, s.parse_memory_mb)
        return self._pool

    def llm(self) -> Any:
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
    def add_folder(self, folder: str) -> str:
        path = os.path.abspath(os.path.expanduser(folder))
        if not os.path.isdir(path):
            raise UsageError(f"not a folder: {folder}")
        self.catalog.add_folder(path)
        return path

    def remove_folder(self, folder: str) -> str:
        path = os.path.abspath(os.path.expanduser(folder))
        if not self.catalog.remove_folder(path):
            raise UsageError(f"not a watched folder: {folder}")
        self.collect_garbage()
        return path

    def folders(self) -> list[str]:
        return [path for _, path in self.catalog.folders()]

    # --- indexing ---------------------------------------------------------------------
    def scanner(self) -> Scanner:
        return Scanner(self.catalog, self.settings.max_file_mb, self.emit)

    def indexer(self) -> Indexer:
        return Indexer(self.catalog, self.store, self.embedder, self.pool, self.settings, self.emit)

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
        from .watcher import FolderWatcher

        stop = stop or threading.Event()
        watcher = FolderWatcher(self.folders(), self.settings.debounce_s, self.settings.force_polling)
        watcher.start()  # before the first scan, so nothing saved meanwhile is missed
        try:
            self.index(progress)
            if on_ready:
                on_ready()
            next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
            while not stop.is_set():
                batch = watcher.wait_batch(timeout=min(1.0, max(0.0, next_reconcile - time.monotonic())))
                if batch:
                    self.index(paths=batch)
                if time.monotonic() >= next_reconcile:
                    self.index()
                    next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
        finally:
            watcher.stop()

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
        self, query: str, k: int | None = None, folder: str | None = None, types: list[str] | None = None
    ) -> list[Hit]:
        with logs.stage("search", k=k) as info:
            hits = Retriever(self.catalog, self.store, self.embedder).search(
                query, k or self.settings.search_k, folder, types
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
    ) -> Answer:
        if not question.strip():
            raise UsageError("the question is empty")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if chat_id is not None and not self.catalog.chat_exists(chat_id):
            raise UsageError(f"no chat with id {chat_id}")
        history = self.catalog.messages(chat_id) if chat_id is not None else []
        chat_id = chat_id if chat_id is not None else self.catalog.new_chat(question[:80])
        previous = [text for role, text in history if role == "user"][-1:]
        hits = self.relevant(
            self.search(" ".join([*previous, question]), folder=folder, types=types), question
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
        budget = llm.n_ctx - self.settings.max_answer_tokens - 400  # rules, example, question
        sources = fit_sources(hits, budget, llm.count_tokens)
        pieces: list[str] = []
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
        timings["generate_ms"] = _ms(gen_start)
        timings["tokens"] = len(pieces)
        if len(pieces) > 1:
            timings["tokens_per_s"] = round(
                (len(pieces) - 1) / max(1e-6, (timings["generate_ms"] - timings["first_token_ms"]) / 1000), 2
            )
        checked = check_citations("".join(pieces), len(sources))
        citations = [
            {
                "n": n,
                "path": sources[n - 1].path,
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

    def cancel(self) -> None:
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


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
