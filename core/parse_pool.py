"""A pool of parser subprocesses with a wall-clock and a memory limit per file."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .parsers import Parsed
from .workers import worker_command


@dataclass
class ParseOutcome:
    parsed: Parsed | None
    status: str = "indexed"  # or skipped / failed / gone
    reason: str | None = None


class _Worker:
    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            worker_command("sealroom.core.parse_worker", str(memory_mb)),
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

    def parse(self, path: str, timeout: float, max_chars: int = 0) -> ParseOutcome:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"path": path, "max_chars": max_chars}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return ParseOutcome(None, "failed", "parse error: the parser process stopped")
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return ParseOutcome(None, "failed", f"parse timeout after {timeout:g} s")
        if line is None:
            code = self.proc.wait()
            return ParseOutcome(
                None,
                "failed",
                f"parse error: the parser crashed (exit code {code}; memory limit {self.memory_mb} MB)",
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


class ParserPool:
    """`submit(path)` parses in one of `size` subprocesses; a dead worker is replaced."""

    def __init__(
        self, size: int = 2, timeout_s: float = 60.0, memory_mb: int = 1024, max_chars: int = 0
    ) -> None:
        self.timeout_s = timeout_s
        self.max_chars = max_chars  # text sent back per file at most (0: all)
        self.memory_mb = memory_mb
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._size = size
        self._started = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="parse")

    def _checkout(self) -> _Worker:
        with self._lock:
            if self._idle.empty() and self._started < self._size:
                self._started += 1
                return _Worker(self.memory_mb)
        return self._idle.get()

    def _run(self, path: str) -> ParseOutcome:
        worker = self._checkout()
        try:
            return worker.parse(path, self.timeout_s, self.max_chars)
        finally:
            if not worker.alive:
                worker.close()
                worker = _Worker(self.memory_mb)
            self._idle.put(worker)

    def submit(self, path: str) -> Future[ParseOutcome]:
        return self._executor.submit(self._run, path)

    def parse(self, path: str) -> ParseOutcome:
        return self._run(path)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        while not self._idle.empty():
            self._idle.get().close()
