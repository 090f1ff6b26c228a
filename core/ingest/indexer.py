"""Work through the queue of pending files: parse (subprocess) → chunk → commit → embed → store.

A parsed file's passages are committed to the catalog at once: it is searchable by keyword and
citable while its vectors follow (the content is listed as `unembedded` until its last vector is
stored). Chunk ids are derived from the content hash and every vector carries a fingerprint of its
text, so a crash at any point leaves a file either pending (parsed again) or committed with some of its
vectors: the next run embeds only the missing ones. Never a duplicate, never a lost file.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sealroom.core.ingest.chunker import chunk_sections
from sealroom.core.ingest.parse_pool import ParseOutcome, ParserPool
from sealroom.core.ingest.parsers import IMAGE_SUFFIXES, LATER, without_running_lines
from sealroom.core.ingest.scanner import EventSink
from sealroom.core.protocols import Embedder, VectorIndex
from sealroom.core.runtime import logs
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import DiskFull
from sealroom.core.runtime.priority import EMBEDDER, lower_this_thread
from sealroom.core.store.catalog import Catalog, Chunk, FileRow

#: (files done, files in all, the file in hand or None when idle, how far that file is: "" or "1,200 of 3,000 passages")
Progress = Callable[[int, int, str | None, str], None]

#: Passages embedded and stored per step (one `embed` call, one write; small files share a step). A file with
#: more is indexed a step at a time, and files parsed meanwhile are finished between its steps: a huge
#: file never holds up the small ones.
STEP = 64
#: Free space kept on the data folder's disk, and what one passage needs there (catalog text, keyword
#: index, vector and its HNSW entry: 5 MB held 599 passages of the corpus, about 8 KB each; counted twice).
MIN_FREE = 1 << 20
BYTES_PER_CHUNK = 16 << 10
#: Committed files whose vectors are made in turn; more wait in the catalog (as after a stop) and are
#: taken up from there, so parsing never waits for embedding and memory stays bounded.
MAX_JOBS = 256
#: ... holding at most this many passages between them (a larger file is taken when it is alone).
MAX_HELD = 4096
#: Vectors of recently embedded texts kept by fingerprint: a text seen again (a repeated page, a
#: disclaimer, a signature) is not embedded again. 1.5 KB each.
RECENT = 2048


@dataclass
class IndexSummary:
    files: int = 0
    pages: int = 0
    chunks: int = 0
    failed: int = 0
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass
class _Job:
    """A committed file (searchable by keyword) whose vectors are being made."""

    row: FileRow
    chunks: list[Chunk]
    texts: list[str]
    prints: list[str]
    todo: list[int]  # positions of the chunks still to embed

    @property
    def done(self) -> int:
        return len(self.chunks) - len(self.todo)


@dataclass
class _Step:
    """Passages of one or more jobs being embedded on the embedding thread, then stored."""

    parts: list[tuple[_Job, list[int]]]  # each job with the positions of its passages in the step
    prints: list[str]  # their text fingerprints, in the order of `parts`
    new: list[str]  # the fingerprints of the texts embedded in this step, in the order of their rows
    embedded: Future[Any]  # done when the embedding thread is free for the next step
    vectors: Future[Any]  # one row per passage in that order, stored when done


#: The reason of a pending file that had scanned pages in its first pass: read with OCR on its turn
WAITING_FOR_OCR = "waiting for OCR"


class Indexer:
    def __init__(
        self,
        catalog: Catalog,
        store: VectorIndex,
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
        self._recent: OrderedDict[str, Any] = OrderedDict()  # fingerprint -> vector

    def run(self, progress: Progress | None = None, stop: threading.Event | None = None) -> IndexSummary:
        """Index until the queue is empty, `stop` is set, or `paused` is (files left stay pending).

        A parsed file is committed first (searchable by keyword at once); its vectors are made on an
        embedding thread of low priority while this one commits the next parsed files, files in turn,
        a step at a time. When paused or stopped, files whose vectors are not complete stay listed as
        unembedded: the vectors written so far are kept (the steps in hand are finished), the rest follows.
        """
        started = time.perf_counter()
        summary = IndexSummary()
        in_flight: dict[str, tuple[FileRow, Future[ParseOutcome]]] = {}
        jobs: deque[_Job] = deque()  # committed files whose vectors are being made, in turn
        catch_up = self.catalog.unembedded()  # committed before a crash or a stop; vectors still missing
        fresh: set[str] = set()  # ... or committed in this run while too many were being embedded
        total = self.catalog.count_by_status().get("pending", 0) + len(catch_up)
        done = 0
        depth = self.pool_size + 1
        # the passages being embedded, and those being stored meanwhile (Chroma's write of one step
        # overlaps the embedding of the next; they finish in order)
        steps: deque[_Step] = deque()

        def show(row: FileRow | None, detail: str = "") -> None:
            if progress:
                busy = len(in_flight) + len(jobs)
                progress(done, max(total, done + busy), row.path if row else None, detail)

        embedding = ThreadPoolExecutor(1, "sealroom-embed", initializer=_embedding_thread)
        storing = ThreadPoolExecutor(1, "sealroom-store")  # normal priority: see _embed
        with embedding, storing:
            while True:
                if steps and steps[0].vectors.done():  # stored as soon as made
                    for finished in self._finish(steps.popleft(), steps):
                        jobs.remove(finished)
                        done += 1
                    continue
                if stop is not None and stop.is_set():
                    break
                paused = self.paused.is_set()
                # when paused, finish the parses in hand and take no new files
                if len(in_flight) < depth and not paused:
                    for row in self.catalog.pending(
                        depth - len(in_flight), exclude=list(in_flight), last=IMAGE_SUFFIXES
                    ):
                        if row.sha256 not in in_flight:  # copies of one content are parsed once
                            # a first pass reads text layers only; a file with scans comes back after
                            # the text documents (reason WAITING_FOR_OCR) and is read with OCR then
                            later = self.pool.ocr and not (row.reason or "").startswith(WAITING_FOR_OCR)
                            submitted = self.pool.submit(row.path, LATER if later else None)
                            in_flight[row.sha256] = (row, submitted)
                ready = next((sha for sha, (_, f) in in_flight.items() if f.done()), None)
                if ready is not None:  # first of all: a parsed file becomes searchable by keyword
                    row, future = in_flight.pop(ready)
                    show(row)
                    outcome = future.result()
                    if outcome.status == "later":
                        self.catalog.wait_for_ocr(row.sha256, outcome.reason or WAITING_FOR_OCR)
                        continue
                    job = self._start(row, outcome, summary)
                    if job is None:
                        done += 1
                    elif _room(jobs, len(job.chunks)):
                        jobs.append(job)
                    else:  # committed: its vectors are made from the catalog once the others are done
                        catch_up.append(job.row.sha256)
                        fresh.add(job.row.sha256)
                    continue
                waiting = next((j for j in jobs if j.todo), None)
                embedder_free = not steps or (len(steps) == 1 and steps[0].embedded.done())
                if embedder_free and waiting is not None and not paused:
                    # the embedding thread runs behind the parsers (lower priority): every file is
                    # searchable by keyword first, and the cores parsing leaves idle make vectors
                    show(
                        waiting.row,
                        f"searchable by keyword; semantic index {waiting.done:,} of "
                        f"{len(waiting.chunks):,} passages",
                    )
                    steps.append(self._embed(jobs, embedding, storing, steps))
                    if jobs[0] is steps[-1].parts[0][0]:
                        jobs.rotate(-1)  # files advance in turn: a small one is not held up by a large one
                    continue
                if catch_up and not paused and _room(jobs) and sum(len(j.todo) for j in jobs) < STEP:
                    sha = catch_up.pop(0)  # taken up while the next step is not full
                    job = self._resume(sha, fresh=sha in fresh)
                    if job is None:
                        done += 1
                    else:
                        jobs.append(job)
                    continue
                if not in_flight and not steps:
                    break
                pending = [f for _, f in in_flight.values()] + [s.vectors for s in steps]
                if steps and not steps[-1].embedded.done():
                    pending.append(steps[-1].embedded)
                wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            while steps:  # stopped: the steps in hand are finished and kept
                wait([steps[0].vectors])
                self._finish(steps.popleft(), steps)
        show(None)
        summary.seconds = time.perf_counter() - started
        summary.by_status = self.catalog.count_by_status()
        return summary

    @property
    def pool_size(self) -> int:
        return max(1, self.settings.parser_processes)

    def _start(self, row: FileRow, outcome: ParseOutcome, summary: IndexSummary) -> _Job | None:
        """Record a failed parse, or chunk and commit a parsed file: a job for its vectors (None when
        nothing is left to do)."""
        summary.files += 1
        if outcome.status == "gone":  # deleted while queued; the scanner reports the removal
            self.catalog.remove_file(row.path)
            return None
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
            return None
        parsed = without_running_lines(outcome.parsed).within(text_budget(self.settings))
        budget = self.settings.max_chunks_per_file
        with logs.stage("chunk", path=row.path) as info:
            chunks = chunk_sections(
                parsed.sections,
                row.sha256,
                self.embedder.token_spans,
                self.settings.chunk_tokens,
                self.settings.chunk_overlap,
                limit=budget + 1,
            )
            info["chunks"] = len(chunks)
        reason = None
        if len(chunks) > budget or parsed.truncated:
            chunks = chunks[:budget]
            last = next((c.page for c in reversed(chunks) if c.page), None)
            where = f" (up to page {last})" if last else ""
            reason = (
                f"indexed the first {len(chunks)} passages{where}; the rest is over the per-file budget "
                f"of {budget} passages (setting max_chunks_per_file)"
            )
        job = self._job(row, chunks, resume=len(chunks) > STEP)
        # searchable by keyword and citable now; the vectors follow (listed as unembedded until then)
        paths = self.catalog.finish_content(
            row.sha256, "indexed", reason, parsed.pages, chunks, embedded=not job.todo
        )
        summary.pages += parsed.pages or len(parsed.sections)
        summary.chunks += len(chunks)
        for path in paths:
            self.emit({"event": "indexed", "path": path, "chunks": len(chunks), "pages": parsed.pages})
        return job if job.todo else None

    def _job(self, row: FileRow, chunks: list[Chunk], resume: bool) -> _Job:
        texts = [embedding_text(c.heading, c.text) for c in chunks]
        prints = [fingerprint(t) for t in texts]
        todo = list(range(len(chunks)))
        if resume:  # stopped or killed part way: keep the vectors already stored
            stored = self.store.fingerprints([c.id for c in chunks])
            todo = [i for i in todo if stored.get(chunks[i].id) != prints[i]]
            if len(todo) < len(chunks):
                logs.event("resumed", path=row.path, stored=len(chunks) - len(todo), chunks=len(chunks))
        return _Job(row, chunks, texts, prints, todo)

    def _resume(self, sha256: str, fresh: bool = False) -> _Job | None:
        """The vectors still missing of a content committed before a crash or a stop, or `fresh`:
        committed in this run and not embedded yet (None: none are missing)."""
        chunks = self.catalog.chunks_of(sha256)
        rows = self.catalog.files_for_content([sha256]).get(sha256, [])
        if not chunks or not rows:
            self.catalog.mark_embedded(sha256)
            return None
        job = self._job(rows[0], chunks, resume=not fresh or len(chunks) > STEP)
        if not job.todo:
            self.catalog.mark_embedded(sha256)
            return None
        return job

    def _room_for(self, chunks: int) -> None:
        """Stop before embedding what could not be stored: a full disk is found in a second, not after
        minutes of embedding. The file stays pending and resumes when there is space."""
        if self._short_of_space(chunks):
            raise DiskFull(self.catalog.path.parent)

    def _short_of_space(self, chunks: int) -> bool:
        try:
            free = shutil.disk_usage(self.catalog.path.parent).free
        except OSError:
            return False
        return free < MIN_FREE + chunks * BYTES_PER_CHUNK

    def _embed(
        self, jobs: deque[_Job], embedding: Executor, storing: Executor, storing_now: deque[_Step]
    ) -> _Step:
        """Start the next step: up to STEP passages from the jobs in turn, embedded in one call on the
        embedding thread (texts embedded recently, or in the step being stored, are not embedded
        again), then stored in one write on the storing thread. Chroma holds the GIL while it writes; on the embedding thread, which runs
        behind the parsers, every other thread (the window's too) waited as long as that starved thread
        took (longest wait measured 89 ms there, 60 ms at normal priority), so the write runs at normal
        priority, and overlaps the embedding of the next step. The more files are parsed while a step
        runs, the more the next one takes: small files share."""
        self._room_for(min(sum(len(j.todo) for j in jobs), STEP))
        parts: list[tuple[_Job, list[int]]] = []
        room = STEP
        for job in jobs:
            if job.todo and room:
                take, job.todo = job.todo[:room], job.todo[room:]
                parts.append((job, take))
                room -= len(take)
        ids = [job.chunks[i].id for job, take in parts for i in take]
        shas = [job.chunks[i].sha256 for job, take in parts for i in take]
        prints = [job.prints[i] for job, take in parts for i in take]
        known = {fp: self._recent[fp] for fp in prints if fp in self._recent}
        for other in storing_now:  # its vectors are made (the embedding thread is free), not yet stored
            if other.embedded.done() and other.embedded.exception() is None:
                made = dict(zip(other.new, other.embedded.result(), strict=True))
                known.update({fp: made[fp] for fp in prints if fp in made and fp not in known})
        new: dict[str, str] = {}  # fingerprint -> text, each text once
        for job, take in parts:
            for i in take:
                if job.prints[i] not in known:
                    new.setdefault(job.prints[i], job.texts[i])
        first = parts[0][0].row.path

        def embed() -> Any:
            with logs.stage("embed", path=first, chunks=len(new), reused=len(prints) - len(new)):
                return self.embedder.embed(list(new.values())) if new else []

        def store(made: Future[Any]) -> Any:
            by_print = {**known, **dict(zip(new, made.result(), strict=True))}
            vectors = np.stack([by_print[fp] for fp in prints])
            with logs.stage("store", path=first, chunks=len(ids), files=len(parts)):
                try:
                    self.store.upsert(ids, vectors, shas, prints)
                except Exception as exc:  # Chroma's words for a full disk vary ("Error in compaction")
                    if self._short_of_space(len(ids)):
                        raise DiskFull(self.catalog.path.parent) from exc
                    raise
            return vectors

        embedded = embedding.submit(embed)
        return _Step(parts, prints, list(new), embedded, storing.submit(store, embedded))

    def _finish(self, step: _Step, later: deque[_Step]) -> list[_Job]:
        """A step's vectors are stored (an embedding or storing error is raised here): the jobs whose
        last passages they were (none of theirs in a `later` step), whose contents leave the
        unembedded list."""
        vectors = step.vectors.result()
        for fp, vector in zip(step.prints, vectors, strict=True):
            self._recent[fp] = np.array(vector)  # a copy: a view would keep the whole step alive
            self._recent.move_to_end(fp)
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        still = {id(job) for other in later for job, _ in other.parts}
        finished = [job for job, _ in step.parts if not job.todo and id(job) not in still]
        for job in finished:
            self.catalog.mark_embedded(job.row.sha256)
        return finished


def _room(jobs: deque[_Job], passages: int = 0) -> bool:
    """Whether one more job (of `passages`) may be held in memory; a large one is taken when alone."""
    return not jobs or (len(jobs) < MAX_JOBS and sum(len(j.chunks) for j in jobs) + passages <= MAX_HELD)


def _embedding_thread() -> None:
    lower_this_thread(EMBEDDER)  # the thread calling ONNX Runtime computes too: behind the parsers


def text_budget(settings: Settings) -> int:
    """Characters of text worth parsing, chunking and embedding per file: the passage budget, with room."""
    return settings.max_chunks_per_file * settings.chunk_tokens * 8


def fingerprint(text: str) -> str:
    """Identifies the exact text a stored vector was computed from."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def embedding_text(heading: str | None, text: str) -> str:
    return f"{heading}\n{text}" if heading and heading not in text[:200] else text
