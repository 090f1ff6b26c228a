"""The outbox: every export is rendered here first, then delivered; nothing is lost, nothing sent twice.

Each item is a folder under `outbox/` in the data directory: `payload` (the rendered file)
and `item.json` (destination, file name, sha256, state, attempts, next try, reason), each
written atomically. An item's id is the hash of its destination, name and content, so
queueing the same export again is the same item. Delivery puts the file in place under a
temporary name and renames it (never replacing); when a file of that name exists, its
content decides: the same bytes mean it was delivered already (a crash after the write), other
bytes get the next free name ("name (2).md"). An unreachable destination keeps the item
pending with a growing delay; a refusal (password, policy, permissions) marks it failed with
the reason, and `retry` puts it back. Delivered payloads are deleted; the record stays.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sealroom.core.output.destinations import Destination, Offline, Refused, Writer, writer
from sealroom.core.runtime.errors import SealroomError

BACKOFF_S = (15, 30, 60, 120, 300, 600, 900)  # then every 15 minutes
MAX_SUFFIX = 100


@dataclass
class Item:
    id: str
    destination: str
    file_name: str
    sha256: str
    size: int
    kind: str
    about: str  # what was exported, e.g. "chat 3" (never document text)
    created_at: float
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    next_try: float = 0.0
    reason: str = ""
    delivered_as: str = ""
    delivered_at: float = 0.0
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _suffixed(name: str, n: int) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"


class Outbox:
    def __init__(self, home: Path) -> None:
        self.dir = home / "outbox"
        self._lock = threading.Lock()

    # --- queueing ----------------------------------------------------------------------
    def add(self, destination: str, file_name: str, data: bytes, kind: str, about: str) -> Item:
        sha = hashlib.sha256(data).hexdigest()
        ident = hashlib.sha256(f"{destination}\0{file_name}\0{sha}".encode()).hexdigest()[:20]
        with self._lock:
            existing = self._load(ident)
            if existing is not None:
                return existing
            folder = self.dir / ident
            tmp = self.dir / f".{ident}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True, mode=0o700)
            with open(tmp / "payload", "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            item = Item(ident, destination, file_name, sha, len(data), kind, about, time.time())
            _write_json(tmp / "item.json", item.to_dict())
            os.replace(tmp, folder)  # the item appears whole or not at all
            return item

    # --- reading -----------------------------------------------------------------------
    def _load(self, ident: str) -> Item | None:
        try:
            return Item(**json.loads((self.dir / ident / "item.json").read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise SealroomError(f"outbox item {ident} is unreadable: {type(exc).__name__}") from None

    def items(self, status: str | None = None) -> list[Item]:
        if not self.dir.is_dir():
            return []
        out = []
        for entry in sorted(self.dir.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            item = self._load(entry.name)
            if item and (status is None or item.status == status):
                out.append(item)
        return sorted(out, key=lambda i: i.created_at)

    def get(self, ident: str) -> Item | None:
        matches = [i for i in self.items() if i.id.startswith(ident)] if ident else []
        return matches[0] if len(matches) == 1 else None

    def _save(self, item: Item) -> None:
        _write_json(self.dir / item.id / "item.json", item.to_dict())

    # --- delivery ----------------------------------------------------------------------
    def retry(self, ident: str | None = None) -> int:
        """Put failed (and waiting) items back to be tried now."""
        n = 0
        with self._lock:
            for item in self.items():
                if item.status == "delivered" or (ident and not item.id.startswith(ident)):
                    continue
                item.status, item.next_try = "pending", 0.0
                self._save(item)
                n += 1
        return n

    def deliver(
        self,
        destinations: Callable[[str], Destination],
        check: Callable[[Destination], None],
        on_result: Callable[[Item, Destination | None], None] = lambda item, dest: None,
        force: bool = False,
        only: str | None = None,
    ) -> list[Item]:
        """Try every due pending item (all of them with `force`); returns the items tried."""
        tried: list[Item] = []
        with self._lock:
            now = time.time()
            due = [
                i
                for i in self.items("pending")
                if (force or i.next_try <= now) and (only is None or i.destination == only)
            ]
            writers: dict[str, Writer] = {}
            # a destination that was unreachable, or refused (a wrong password is one failed login, not
            # six), is not tried again this round: its other items get the same answer
            stopped: dict[str, Offline | Refused] = {}
            try:
                for item in due:
                    dest: Destination | None = None
                    try:
                        dest = destinations(item.destination)
                        check(dest)
                        if dest.name in stopped:
                            raise stopped[dest.name]
                        if dest.name not in writers:
                            writers[dest.name] = writer(dest)
                        self._deliver_one(item, writers[dest.name])
                    except (Offline, Refused) as exc:
                        if dest is not None:
                            stopped.setdefault(dest.name, exc)
                        if isinstance(exc, Offline):
                            self._postpone(item, str(exc))
                        else:  # password, policy, permissions: waiting will not help
                            self._fail(item, str(exc))
                    except SealroomError as exc:
                        self._fail(item, str(exc))
                    except OSError as exc:
                        self._postpone(item, f"{type(exc).__name__}: {exc.strerror or exc}")
                    tried.append(item)
                    on_result(item, dest)
            finally:
                for w in writers.values():
                    w.close()
        return tried

    def _deliver_one(self, item: Item, w: Writer) -> None:
        data = (self.dir / item.id / "payload").read_bytes()
        if hashlib.sha256(data).hexdigest() != item.sha256:
            raise SealroomError("the outbox copy is damaged (content hash differs); export again")
        for n in range(1, MAX_SUFFIX + 1):
            name = item.file_name if n == 1 else _suffixed(item.file_name, n)
            existing = w.existing_sha256(name)
            if existing == item.sha256:  # delivered before (e.g. a crash before we noted it)
                break
            if existing is None and w.put(name, data):
                break
            if w.existing_sha256(name) == item.sha256:  # lost a race with ourselves elsewhere
                break
        else:
            raise Refused(f"{MAX_SUFFIX} files named like {item.file_name} exist already")
        item.status, item.delivered_as, item.delivered_at = "delivered", name, time.time()
        item.reason = "" if n == 1 else f"a different {item.file_name} exists there: saved as {name}"
        item.attempts += 1
        item.history.append(f"{_stamp()} delivered as {name}")
        self._save(item)
        (self.dir / item.id / "payload").unlink(missing_ok=True)

    def _postpone(self, item: Item, reason: str) -> None:
        delay = BACKOFF_S[min(item.attempts, len(BACKOFF_S) - 1)]
        item.attempts += 1
        item.status, item.reason, item.next_try = "pending", f"waiting: {reason}", time.time() + delay
        item.history = ([*item.history, f"{_stamp()} {reason}"])[-20:]
        self._save(item)

    def _fail(self, item: Item, reason: str) -> None:
        item.attempts += 1
        item.status, item.reason = "failed", reason
        item.history = ([*item.history, f"{_stamp()} failed: {reason}"])[-20:]
        self._save(item)

    def next_due(self) -> float | None:
        times = [i.next_try for i in self.items("pending")]
        return min(times) if times else None


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
