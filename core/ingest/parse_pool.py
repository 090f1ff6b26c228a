"""A pool of parser subprocesses with a wall-clock and a memory limit per file."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sealroom.core.ingest.parsers import NO_PDF_TEXT, Parsed
from sealroom.core.runtime.workers import worker_command


@dataclass
class ParseOutcome:
    parsed: Parsed | None
    status: str = "indexed"  # or skipped / failed / gone
    reason: str | None = None


CRASHED = "parse error: the parser crashed"


class _Worker:
    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            worker_command("sealroom.core.ingest.parse_worker", str(memory_mb)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.retired = False  # the worker grew large and exits: replace it
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def parse(
        self,
        path: str,
        timeout: float,
        max_chars: int = 0,
        part: tuple[int, int] = (0, 1),
        pdfium: bool = True,
        ocr: bool | str = True,
    ) -> ParseOutcome:
        assert self.proc.stdin is not None
        try:
            request = {"path": path, "max_chars": max_chars, "part": list(part), "pdfium": pdfium, "ocr": ocr}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return ParseOutcome(None, "failed", "parse error: the parser process stopped")
        # `timeout` without a word from the worker is a hang; a file being OCR'd reports each page, and
        # may take OCR_TIMEOUTS timeouts in all
        deadline = time.monotonic() + timeout * OCR_TIMEOUTS
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, min(timeout, deadline - time.monotonic())))
            except queue.Empty:
                self.kill()
                waited = timeout if time.monotonic() < deadline else timeout * OCR_TIMEOUTS
                return ParseOutcome(None, "failed", f"parse timeout after {waited:g} s")
            if line is None or not line.startswith('{"progress"'):
                break
        if line is None:
            code = self.proc.wait()
            return ParseOutcome(
                None, "failed", f"{CRASHED} (exit code {code}; memory limit {self.memory_mb} MB)"
            )
        data = json.loads(line)
        self.retired = bool(data.pop("retire", False))
        if not data.pop("ok"):
            return ParseOutcome(None, data["status"], data["reason"])
        return ParseOutcome(Parsed.from_json(data))

    @property
    def alive(self) -> bool:
        return not self.retired and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()


#: A file being read by OCR (it reports each page) may take this many parse timeouts in all.
OCR_TIMEOUTS = 20

#: A PDF larger than this is parsed by all workers at once, each reading its share of the pages.
SHARED_PDF_BYTES = 512 * 1024


def _large_pdf(path: str) -> bool:
    try:
        return path.lower().endswith(".pdf") and os.path.getsize(path) > SHARED_PDF_BYTES
    except OSError:
        return False  # gone or unreadable: one worker finds out and says so


def merge(parts: list[ParseOutcome]) -> ParseOutcome:
    """One outcome from the parts of a shared PDF: any part's failure is the file's, else its pages
    in order; no text on any page is the usual 'no extractable text'."""
    for status in ("gone", "failed", "later", "skipped"):
        bad = next((p for p in parts if p.parsed is None and p.status == status), None)
        if bad is not None:
            return bad
    parsed = [p.parsed for p in parts if p.parsed is not None]
    sections = sorted((s for p in parsed for s in p.sections), key=lambda s: s.page or 0)
    if not sections:
        return ParseOutcome(None, "skipped", NO_PDF_TEXT)
    return ParseOutcome(
        Parsed(
            sections,
            pages=max((p.pages or 0) for p in parsed) or None,
            truncated=any(p.truncated for p in parsed),
        )
    )


#: Parser processes idle this long are stopped (about 75 MB each); the next file starts one again (~0.5 s).
IDLE_STOP_S = 30.0


class ParserPool:
    """`submit(path)` parses in one of `size` subprocesses; a dead worker is replaced, and workers
    idle for `idle_stop_s` are stopped so an idle app does not hold their memory."""

    def __init__(
        self,
        size: int = 2,
        timeout_s: float = 60.0,
        memory_mb: int = 1024,
        max_chars: int = 0,
        idle_stop_s: float = IDLE_STOP_S,
        ocr: bool = True,
    ) -> None:
        self.timeout_s = timeout_s
        self.ocr = ocr  # scanned pages and images read by OCR
        self.max_chars = max_chars  # text sent back per file at most (0: all)
        self.memory_mb = memory_mb
        self.idle_stop_s = idle_stop_s
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._size = size
        self._started = 0
        self._busy = 0
        self._last_used = time.monotonic()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="parse")
        if idle_stop_s > 0:
            threading.Thread(target=self._stop_idle_workers, daemon=True, name="parse-idle").start()

    def _checkout(self) -> _Worker:
        with self._lock:
            self._busy += 1  # counted before a worker is taken, so idle workers are never stopped under it
            with contextlib.suppress(queue.Empty):
                return self._idle.get_nowait()
            start = self._started < self._size
            self._started += start
        return _Worker(self.memory_mb) if start else self._idle.get()

    def _stop_idle_workers(self) -> None:
        while not self._closed.wait(min(5.0, self.idle_stop_s)):
            with self._lock:
                if self._busy or time.monotonic() - self._last_used < self.idle_stop_s:
                    continue
                stopping = []
                with contextlib.suppress(queue.Empty):
                    while True:
                        stopping.append(self._idle.get_nowait())
                self._started -= len(stopping)
            for worker in stopping:
                worker.close()

    @property
    def running(self) -> int:
        """Parser processes alive now (busy or idle)."""
        return self._started

    def _run(
        self, path: str, part: tuple[int, int] = (0, 1), pdfium: bool = True, ocr: bool | str | None = None
    ) -> ParseOutcome:
        """Parse in a worker. A PDF whose parse took its process down (PDFium aborts when a stream
        inflates past the memory limit, where pypdf stops with a reason) is read again by pypdf alone."""
        worker = self._checkout()
        try:
            outcome = worker.parse(
                path, self.timeout_s, self.max_chars, part, pdfium, self.ocr if ocr is None else ocr
            )
        finally:
            if not worker.alive:
                worker.close()
                worker = _Worker(self.memory_mb)
            with self._lock:
                self._busy -= 1
                self._last_used = time.monotonic()
                self._idle.put(worker)
        if pdfium and path.lower().endswith(".pdf") and (outcome.reason or "").startswith(CRASHED):
            return self._run(path, part, pdfium=False, ocr=ocr)
        return outcome

    def submit(self, path: str, ocr: bool | str | None = None) -> Future[ParseOutcome]:
        """Parse in a worker; a large PDF is shared between all workers, each reading every n-th page
        (a 117-page PDF: 7.7 s in one worker), so it is searchable sooner and embedding starts sooner."""
        n = self._size if _large_pdf(path) else 1
        if n == 1:
            return self._executor.submit(self._run, path, (0, 1), True, ocr)
        parts = [self._executor.submit(self._run, path, (k, n), True, ocr) for k in range(n)]
        whole: Future[ParseOutcome] = Future()
        left = [n]
        lock = threading.Lock()

        def one_done(_: Future[ParseOutcome]) -> None:
            with lock:
                left[0] -= 1
                if left[0]:
                    return
            try:
                whole.set_result(merge([f.result() for f in parts]))
            except Exception as exc:  # a part raised (not a parse failure: those are outcomes)
                whole.set_exception(exc)

        for f in parts:
            f.add_done_callback(one_done)
        return whole

    def parse(self, path: str) -> ParseOutcome:
        return self._run(path)

    def close(self) -> None:
        self._closed.set()
        self._executor.shutdown(wait=True)
        while not self._idle.empty():
            self._idle.get().close()
