"""Resident memory of a process and all its descendants (Linux /proc; elsewhere: unknown)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: the fields after ")" are fixed
        fields = stat[stat.rfind(")") + 2 :].split()
        kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_pids(pid: int | None = None) -> list[int]:
    """`pid` (default: this process) and all its descendants."""
    kids = _children()
    found, todo = [], [os.getpid() if pid is None else pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(kids.get(current, ()))
    return found


def tree_rss(pid: int | None = None) -> int | None:
    """Bytes resident in `pid` (default: this process) and its descendants; None where /proc is missing."""
    if not Path("/proc/self/statm").exists():
        return None
    return sum(_rss(current) for current in tree_pids(pid))


class PeakSampler:
    """Samples `tree_rss(pid)` every `interval` seconds in a thread; `peak` is the highest seen."""

    def __init__(self, pid: int | None = None, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid) or 0)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss(self.pid) or 0)


def trim_heap() -> None:
    """Return freed heap memory to the system (glibc keeps it otherwise); nothing elsewhere."""
    import ctypes

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (musl has no malloc_trim)
            ctypes.CDLL("libc.so.6").malloc_trim(0)
