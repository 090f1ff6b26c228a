"""Work through the queue of pending files: parse (subprocess) → chunk → embed → store.

Vectors are written to Chroma before the catalog commits a version as indexed, and
chunk ids are derived from the content hash, so a crash at any point leaves either
nothing or vectors that the redo overwrites: never a duplicate, never a lost file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from . import logs
from .catalog import Catalog, FileRow
from .chunker import chunk_sections
from .config import Settings
from .parse_pool import ParseOutcome, ParserPool
from .protocols import Embedder
from .scanner import EventSink
from .vectorstore import VectorStore

Progress = Callable[[int, int, str | None], None]


@dataclass
class IndexSummary:
    files: int = 0
    pages: int = 0
    chunks: int = 0
    failed: int = 0
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


class Indexer:
    def __init__(
        self,
        catalog: Catalog,
        store: VectorStore,
        embedder: Embedder,
        pool: ParserPool,
        settings: Settings,
        emit: EventSink | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.embedder = embedder
        self.pool = pool
        self.settings = settings
        self.emit = emit or (lambda event: None)
        self.paused = threading.Event()

    def run(self, progress: Progress | None = None, stop: threading.Event | None = None) -> IndexSummary:
        """Index until the queue is empty, `stop` is set, or `paused` is (files left stay pending)."""
        started = time.perf_counter()
        summary = IndexSummary()
        in_flight: dict[str, tuple[FileRow, Future[ParseOutcome]]] = {}
        total = self.catalog.count_by_status().get("pending", 0)
        done = 0
        depth = self.pool_size + 1
        while True:
            if stop is not None and stop.is_set():
                break
            # when paused, finish the files in hand and take no new ones
            if len(in_flight) < depth and not self.paused.is_set():
                for row in self.catalog.pending(depth - len(in_flight), exclude=in_flight):
                    if row.sha256 not in in_flight:  # copies of one content are parsed once
                        in_flight[row.sha256] = (row, self.pool.submit(row.path))
            if not in_flight:
                break
            sha = next(iter(in_flight))  # oldest first keeps progress in queue order
            row, future = in_flight.pop(sha)
            if progress:
                progress(done, max(total, done + 1 + len(in_flight)), row.path)
            outcome = future.result()
            self._finish(row, outcome, summary)
            done += 1
        if progress:
            progress(done, max(total, done), None)
        summary.seconds = time.perf_counter() - started
        summary.by_status = self.catalog.count_by_status()
        return summary

    @property
    def pool_size(self) -> int:
        return max(1, self.settings.parser_processes)

    def _finish(self, row: FileRow, outcome: ParseOutcome, summary: IndexSummary) -> None:
        summary.files += 1
        if outcome.status == "gone":  # deleted while queued; the scanner reports the removal
            self.catalog.remove_file(row.path)
            return
        if outcome.parsed is None:
            paths = self.catalog.finish_content(row.sha256, outcome.status, outcome.reason, None, [])
            summary.failed += 1
            logs.problem(
                "file not indexed",
                path=row.path,
                status=outcome.status,
                reason=outcome.reason,
            )
            for path in paths:
                self.emit(
                    {"event": "failed", "path": path, "status": outcome.status, "reason": outcome.reason}
                )
            return
        parsed = outcome.parsed.within(text_budget(self.settings))
        with logs.stage("chunk", path=row.path) as info:
            chunks = chunk_sections(
                parsed.sections,
                row.sha256,
                self.embedder.token_spans,
                self.settings.chunk_tokens,
                self.settings.chunk_overlap,
            )
            info["chunks"] = len(chunks)
        budget = self.settings.max_chunks_per_file
        reason = None
        if len(chunks) > budget or parsed.truncated:
            chunks = chunks[:budget]
            last = next((c.page for c in reversed(chunks) if c.page), None)
            where = f" (up to page {last})" if last else ""
            reason = (
                f"indexed the first {len(chunks)} passages{where}; the rest is over the per-file budget "
                f"of {budget} passages (setting max_chunks_per_file)"
            )
        with logs.stage("embed", path=row.path, chunks=len(chunks)):
            vectors = self.embedder.embed([embedding_text(c.heading, c.text) for c in chunks])
        with logs.stage("store", path=row.path, chunks=len(chunks)):
            self.store.upsert([c.id for c in chunks], vectors, [c.sha256 for c in chunks])
            paths = self.catalog.finish_content(row.sha256, "indexed", reason, parsed.pages, chunks)
        summary.pages += parsed.pages or len(parsed.sections)
        summary.chunks += len(chunks)
        for path in paths:
            self.emit({"event": "indexed", "path": path, "chunks": len(chunks), "pages": parsed.pages})


def text_budget(settings: Settings) -> int:
    """Characters of text worth parsing, chunking and embedding per file: the passage budget, with room."""
    return settings.max_chunks_per_file * settings.chunk_tokens * 8


def embedding_text(heading: str | None, text: str) -> str:
    return f"{heading}\n{text}" if heading and heading not in text[:200] else text
