"""Watch folders with watchdog and hand over debounced batches of changed paths.

Every event only marks paths dirty; the scanner then looks at the disk itself, so
editors' write-temp-then-rename saves, moves and bursts all end in the same state.
Network folders use a polling observer (inotify does not see other machines' writes).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "fuse.rclone", "davfs"}


def is_network_path(path: str) -> bool:
    if path.startswith(("\\\\", "//")):
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    best, fstype = "", ""
    for line in mounts:
        parts = line.split()
        inside = len(parts) >= 3 and (path == parts[1] or path.startswith(parts[1].rstrip("/") + "/"))
        if inside and len(parts[1]) > len(best):
            best, fstype = parts[1], parts[2]
    return fstype in NETWORK_FS


class FolderWatcher:
    """Collects dirty paths; `wait_batch()` returns them once events have been quiet for `debounce_s`."""

    def __init__(self, folders: list[str], debounce_s: float = 0.25, force_polling: bool = False) -> None:
        self.debounce_s = debounce_s
        self._dirty: set[str] = set()
        self._last_event = 0.0
        self._cond = threading.Condition()
        self._observers: list[Any] = []
        self._folders = folders
        self._force_polling = force_polling
        self.polling: list[str] = []

    def start(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                paths = [event.src_path, getattr(event, "dest_path", "")]
                watcher._mark([os.fsdecode(p) for p in paths if p])

        for folder in self._folders:
            polling = self._force_polling or is_network_path(folder)
            observer = PollingObserver(timeout=2) if polling else Observer()
            if polling:
                self.polling.append(folder)
            observer.schedule(Handler(), folder, recursive=True)
            observer.daemon = True
            observer.start()
            self._observers.append(observer)

    def _mark(self, paths: list[str]) -> None:
        with self._cond:
            self._dirty.update(paths)
            self._last_event = time.monotonic()
            self._cond.notify_all()

    def healthy(self) -> bool:
        return all(o.is_alive() for o in self._observers)

    def wait_batch(self, timeout: float) -> set[str]:
        """Dirty paths after a quiet period, or an empty set when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                if self._dirty and now - self._last_event >= self.debounce_s:
                    batch, self._dirty = self._dirty, set()
                    return batch
                if now >= deadline:
                    return set()
                wait = self.debounce_s - (now - self._last_event) if self._dirty else deadline - now
                self._cond.wait(max(0.01, min(wait, deadline - now)))

    def stop(self) -> None:
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=5)
        self._observers.clear()
