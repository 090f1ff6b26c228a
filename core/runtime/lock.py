"""One process owns a data directory (Chroma is not safe for several on one directory)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from sealroom.core.runtime.errors import DataDirInUse


class DataDirLock:
    """Holds an OS file lock on the data directory; a second owner fails at once."""

    def __init__(self, data_dir: Path, purpose: str = "") -> None:
        # not thread-local: the window opens the engine on a worker thread and closes it on another; a
        # thread-local lock would look unheld there and stay held until the process ended
        self._lock = FileLock(str(data_dir / "sealroom.lock"), thread_local=False)
        self._owner_file = data_dir / "owner.json"
        self._purpose = purpose or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:2])

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0.5)
        except Timeout:
            raise DataDirInUse(f"Sealroom's data directory is in use by {self._describe_owner()}") from None
        self._owner_file.write_text(
            json.dumps({"pid": os.getpid(), "purpose": self._purpose, "since": time.time()})
        )

    def release(self) -> None:
        if self._lock.is_locked:
            self._owner_file.unlink(missing_ok=True)
            self._lock.release()

    def _describe_owner(self) -> str:
        try:
            owner = json.loads(self._owner_file.read_text())
            return f"process {owner['pid']} ({owner.get('purpose') or 'sealroom'})"
        except (OSError, ValueError, KeyError):
            return "another Sealroom process"

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
