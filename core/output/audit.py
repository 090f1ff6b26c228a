"""The audit trail: append-only, hash-chained records of what was asked, answered and exported.

Each record is one JSON line in `audit/audit.jsonl` holding the sha256 of the record before
it (`prev`) and its own (`hash`, over the canonical JSON of every other field). `head.json`
keeps the last record's sequence number and hash (so a cut-off tail is caught) and the base
the chain starts from after retention pruned older records. Where the OS keyring holds (or
can take) an HMAC key, each record and the head also carry `mac`, so someone who edits a
record and recomputes the chain is still caught.

An anchor outside the data folder makes erasure and rollback show: the keyring entry beside the
HMAC key holds the last record's sequence number and hash (records written under it say
`"anchored": 1`). A trail that is missing, shorter than the anchor, or whose anchored record
differs fails `verify`; a record written after such a rollback finds it, records it, and the anchor
keeps saying so. Routine events are recovered and noted, never passed off as tampering: a record
cut short by a kill is removed and noted, a head one record behind (a kill between the record and
the head) is moved on, and records written while no keyring answered say `"unsigned"` and why.
`verify` says which checks it could run. Records never hold document text: questions are hashed
unless the IT policy says to record them.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealroom.core.runtime import secrets_store

GENESIS = "0" * 64
KEY_ACCOUNT = "audit-hmac-key"
ANCHOR_ACCOUNT = "audit-anchor"
TAIL_BYTES = 1 << 16  # a record is far shorter: the last one is in the file's last 64 KiB


def _canonical(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k not in ("hash", "mac")}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogateescape"
    )


@dataclass
class Verification:
    ok: bool
    records: int
    signed: int
    message: str
    broken_seq: int | None = None
    checked: tuple[str, ...] = ("chain",)
    not_checked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "signed": self.signed,
            "message": self.message,
            "broken_seq": self.broken_seq,
            "checked": list(self.checked),
            "not_checked": list(self.not_checked),
        }


class AuditTrail:
    """Appends records (thread-safe; one process owns a data directory) and verifies the chain."""

    def __init__(self, home: Path, enabled: bool = True, use_keyring: bool = True) -> None:
        self.dir = home / "audit"
        self.path = self.dir / "audit.jsonl"
        self.head_path = self.dir / "head.json"
        self.enabled = enabled
        self._use_keyring = use_keyring
        self._key: bytes | bool | None = False  # False: not looked up yet
        self._lock = threading.Lock()
        # the trail's last record: learnt from the file at this process's first record, then the one it wrote
        self._last: dict[str, Any] | None = None
        self.user = _user()

    # --- the HMAC key ------------------------------------------------------------------
    def key(self, create: bool = True) -> bytes | None:
        """The HMAC key from the keyring (made on first use), or None where no keyring works."""
        if self._key is False and self._use_keyring:
            stored = secrets_store.get(KEY_ACCOUNT, self._scope())
            if stored is None:
                if not create:  # a look-up only (verify): the next record may still make the key
                    return None
                stored = secrets.token_hex(32)
                if not secrets_store.set(KEY_ACCOUNT, self._scope(), stored):
                    stored = None
            self._key = bytes.fromhex(stored) if stored else None
        return self._key if isinstance(self._key, bytes) else None

    def _scope(self) -> str:
        """One key per data directory."""
        return hashlib.sha256(str(self.dir.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]

    # --- writing -----------------------------------------------------------------------
    def record(self, event: str, **data: Any) -> dict[str, Any] | None:
        """Append one record; returns it (None when the IT policy turned the trail off)."""
        if not self.enabled:
            return None
        with self._lock:
            if self._last is None:  # this process's first record: mend what a kill left, learn the last one
                head, notes = self._recover(self._head())
            else:  # the trail ends with what this process wrote: nothing to mend
                head, notes = self._head(), []
            key = self.key()
            anchor = self._anchor() if key else None
            if anchor is not None and not anchor.get("broken"):
                lost = _rolled_back(anchor, head)
                if lost:
                    anchor["broken"] = f"{lost} (found {_now()})"
                    self._set_anchor(anchor)
                    notes.append(("audit_rollback_detected", {"reason": lost}))
            for note, fields in notes:
                head = self._append(head, key, anchor, note, fields)
            self._append(head, key, anchor, event, data)
            return self._last

    def _append(
        self, head: dict[str, Any], key: bytes | None, anchor: dict[str, Any] | None, event: str, data: Any
    ) -> dict[str, Any]:
        """Write one record after `head`; returns the new head (the record is `_last`)."""
        rec: dict[str, Any] = {
            "seq": head["seq"] + 1,
            "time": _now(),
            "ts": round(time.time(), 3),
            "user": self.user,
            "event": event,
            "data": data,
            "prev": head["hash"],
        }
        last = self._last or {}
        if key:
            rec["anchored"] = 1
        elif "mac" in last or "unsigned" in last:  # the trail was being signed: say why this one is not
            rec["unsigned"] = "no keyring answered: written unsigned, as the app noted"
        rec["hash"] = hashlib.sha256(_canonical(rec)).hexdigest()
        if key:
            rec["mac"] = hmac.new(key, rec["hash"].encode(), "sha256").hexdigest()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "surrogateescape"))
            os.fsync(fd)
        finally:
            os.close(fd)
        head = {**head, "seq": rec["seq"], "hash": rec["hash"]}
        self._write_head(head, key)
        if key:
            self._set_anchor({"seq": rec["seq"], "hash": rec["hash"], **_broken(anchor)})
        self._last = rec
        return head

    # --- the anchor in the keyring ------------------------------------------------------
    def _anchor(self) -> dict[str, Any] | None:
        raw = secrets_store.get(ANCHOR_ACCOUNT, self._scope()) if self._use_keyring else None
        try:
            anchor = json.loads(raw) if raw else None
        except ValueError:
            return {"seq": 0, "hash": "", "broken": "the keyring's anchor is not readable"}
        return anchor if isinstance(anchor, dict) else None

    def _set_anchor(self, anchor: dict[str, Any]) -> None:
        secrets_store.set(ANCHOR_ACCOUNT, self._scope(), json.dumps(anchor, separators=(",", ":")))

    # --- recovery after a kill ------------------------------------------------------------
    def _tail(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
                return f.read()
        except FileNotFoundError:
            return b""

    def _recover(self, head: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        """Mend what a kill mid-write leaves, and say so in the trail: a last record cut short (it is
        removed; it was never acknowledged), a head one record behind the file (it moves on)."""
        notes: list[tuple[str, dict[str, Any]]] = []
        tail = self._tail()
        if tail and not tail.endswith(b"\n"):
            keep = self.path.stat().st_size - (len(tail) - tail.rfind(b"\n") - 1)
            os.truncate(self.path, keep)
            notes.append(
                ("audit_recovered", {"gap": "a record being written when Sealroom stopped was removed"})
            )
            tail = self._tail()
        last = _last_record(tail)
        self._last = last or {}
        if (
            last is not None
            and last.get("seq") == head["seq"] + 1
            and last.get("prev") == head["hash"]
            and hashlib.sha256(_canonical(last)).hexdigest() == last.get("hash")
        ):
            head = {**head, "seq": last["seq"], "hash": last["hash"]}
            notes.append(("audit_recovered", {"gap": f"the head was one record behind record {last['seq']}"}))
        return head, notes

    def _head(self) -> dict[str, Any]:
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
            return {k: head[k] for k in ("seq", "hash", "base_seq", "base_prev")}
        except (OSError, ValueError, KeyError, TypeError):
            lines = list(self._lines())
            last = lines[-1] if lines else None
            if last is not None:  # head lost: continue after the last readable record
                try:
                    rec = json.loads(last)
                    return {"seq": rec["seq"], "hash": rec["hash"], "base_seq": 1, "base_prev": GENESIS}
                except (ValueError, KeyError, TypeError):
                    pass
            return {"seq": 0, "hash": GENESIS, "base_seq": 1, "base_prev": GENESIS}

    def _write_head(self, head: dict[str, Any], key: bytes | None) -> None:
        """The head, signed with `key` when there is one."""
        body = {k: head[k] for k in ("seq", "hash", "base_seq", "base_prev")}
        if key:
            body["mac"] = hmac.new(key, _canonical(body), "sha256").hexdigest()
        tmp = self.head_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, self.head_path)

    def prune(self, days: int) -> int:
        """Drop records older than `days` (0: keep all); the chain then starts at the first kept one."""
        if days <= 0 or not self.enabled or not self.path.exists():
            return 0
        cutoff = time.time() - days * 86400
        with self._lock:
            lines = list(self._lines())
            keep = [line for line in lines if json.loads(line).get("ts", 0) >= cutoff]
            dropped = len(lines) - len(keep)
            if not dropped:
                return 0
            head = self._head()
            if keep:
                first = json.loads(keep[0])
                head.update(base_seq=first["seq"], base_prev=first["prev"])
            else:
                head.update(base_seq=head["seq"] + 1, base_prev=head["hash"])
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8", errors="surrogateescape")
            os.replace(tmp, self.path)
            self._write_head(head, self.key(create=False))
        self.record("audit_pruned", records=dropped, older_than_days=days)
        return dropped

    # --- reading -----------------------------------------------------------------------
    def _lines(self) -> Iterator[str]:
        try:
            with open(self.path, encoding="utf-8", errors="surrogateescape") as f:
                for line in f:
                    if line.strip():
                        yield line.rstrip("\n")
        except FileNotFoundError:
            return

    def records(self, last: int | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self._lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "unreadable record", "data": {}})
        return out[-last:] if last else out

    def verify(self) -> Verification:
        """OK, or the first record that was edited, deleted, reordered, or where the trail was cut, erased or
        rolled back; says which checks it could run (signatures and the anchor need the keyring)."""
        keyring = self._use_keyring and secrets_store.available()
        key = self.key(create=False) if keyring else None
        anchor = self._anchor() if keyring else None
        skipped = () if keyring else ("signatures", "anchor")
        checked = ("chain",) + (("signatures", "anchor") if keyring else ())
        walk = _Walk()
        try:
            if anchor and anchor.get("broken"):
                raise _Broken(f"the keyring's anchor recorded: {anchor['broken']}", anchor.get("seq"))
            head, lines, torn = self._read_trail()
            if head is None:
                if anchor:
                    raise _Broken(
                        "the audit trail is missing or was replaced: the keyring's anchor says record "
                        f"{anchor['seq']} was written",
                        anchor.get("seq"),
                    )
                if lines:
                    raise _Broken("the trail's head file is missing", 1)
                message = "OK: the audit trail is empty"
            else:
                walk.run(head, lines, key if keyring else None, keyring, anchor)
                walk.check_ends(head, key, keyring, anchor)
                message = walk.summary(len(lines), torn)
        except _Broken as broken:
            return Verification(
                False, walk.records, walk.signed, broken.message, broken.seq, checked, skipped
            )
        if skipped:
            message += "; signatures and the keyring's anchor NOT checked (no keyring answered)"
        return Verification(True, walk.records, walk.signed, message, None, checked, skipped)

    def _read_trail(self) -> tuple[dict[str, Any] | None, list[str], bool]:
        """The head (None when absent), the record lines, and whether the last line was cut short."""
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            head = None
        except (OSError, ValueError):
            raise _Broken("the trail's head file is unreadable") from None
        raw = self.path.read_bytes() if self.path.exists() else b""
        torn = bool(raw) and not raw.endswith(b"\n")  # a kill mid-write: the app removes it and says so
        lines = [x for x in raw.decode("utf-8", "surrogateescape").split("\n") if x.strip()]
        return head, lines[:-1] if torn else lines, torn


class _Broken(Exception):
    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.message, self.seq = message, seq


@dataclass
class _Walk:
    """One pass along the chain: what it counted, and where it ended."""

    records: int = 0
    signed: int = 0
    unsigned: int = 0
    anchored: int = 0
    anchor_seen: bool = False
    behind: bool = False
    seq: int = 1
    prev: str = GENESIS
    last: dict[str, Any] = field(default_factory=dict)

    def run(
        self,
        head: dict[str, Any],
        lines: list[str],
        key: bytes | None,
        keyring: bool,
        anchor: dict[str, Any] | None,
    ) -> None:
        self.seq, self.prev = int(head.get("base_seq", 1)), head.get("base_prev", GENESIS)
        for line in lines:
            rec = self._record(line)
            if keyring:
                self._signature(rec, key)
            self.unsigned += "unsigned" in rec
            self.anchored += "anchored" in rec
            if anchor and self.seq == anchor.get("seq"):
                if rec["hash"] != anchor.get("hash"):
                    raise _Broken(f"record {self.seq} is not the record the keyring's anchor holds", self.seq)
                self.anchor_seen = True
            self.prev, self.seq, self.last = rec["hash"], self.seq + 1, rec
            self.records += 1

    def _record(self, line: str) -> dict[str, Any]:
        seq = self.seq
        try:
            rec = json.loads(line)
        except ValueError:
            raise _Broken(f"record {seq} is not valid JSON", seq) from None
        if not isinstance(rec, dict) or rec.get("seq") != seq:
            got = rec.get("seq") if isinstance(rec, dict) else None
            what = "missing (deleted)" if isinstance(got, int) and got > seq else "out of order"
            raise _Broken(f"record {seq} is {what}: found record {got} there", seq)
        if rec.get("prev") != self.prev:
            raise _Broken(f"record {seq} does not follow record {seq - 1}", seq)
        if hashlib.sha256(_canonical(rec)).hexdigest() != rec.get("hash"):
            raise _Broken(f"record {seq} was changed (hash does not match)", seq)
        return rec

    def _signature(self, rec: dict[str, Any], key: bytes | None) -> None:
        seq = self.seq
        if "mac" in rec:
            if key is None:
                raise _Broken("the trail is signed but the keyring no longer holds its key", seq)
            if rec["mac"] != hmac.new(key, rec["hash"].encode(), "sha256").hexdigest():
                raise _Broken(f"record {seq} was changed (signature does not match)", seq)
            self.signed += 1
        elif self.signed and "unsigned" not in rec:
            raise _Broken(f"record {seq} lost its signature", seq)

    def check_ends(
        self, head: dict[str, Any], key: bytes | None, keyring: bool, anchor: dict[str, Any] | None
    ) -> None:
        """The trail ends where its (signed) head says, or one record after it (a kill before the head
        was written), and it holds the record the keyring's anchor names."""
        head_mac = hmac.new(key, _canonical(head), "sha256").hexdigest() if key else ""
        if key and (head.get("mac") or not self.last.get("unsigned")) and head.get("mac") != head_mac:
            raise _Broken("the trail's head file was changed (signature does not match)")
        end, head_seq = self.seq - 1, int(head.get("seq", 0))
        self.behind = end == head_seq + 1 and self.last.get("prev") == head.get("hash")
        if not self.behind and (end != head_seq or self.prev != head.get("hash")):
            if end < head_seq:
                raise _Broken(f"the trail was cut: records {self.seq} to {head_seq} are missing", self.seq)
            raise _Broken("the trail does not end where its head says", self.seq)
        if keyring and anchor is None and self.anchored:
            raise _Broken("the keyring's anchor of this trail was removed")
        if anchor and not self.anchor_seen:
            a_seq, base = int(anchor.get("seq", 0)), int(head.get("base_seq", 1))
            pruned = a_seq < base and not (a_seq == base - 1 and anchor.get("hash") != head.get("base_prev"))
            if not pruned:
                raise _Broken(
                    f"the trail was rolled back or cut: the keyring's anchor says record {a_seq} was written; "
                    f"the trail ends at record {end}",
                    self.seq,
                )

    def summary(self, records: int, torn: bool) -> str:
        how = f"{self.signed} signed with the keyring's key" if self.signed else "not signed (no keyring key)"
        noted = (
            [f"{self.unsigned} written while no keyring answered (noted, not signed)"]
            if self.unsigned
            else []
        )
        if torn:
            noted.append("the last record was cut short by a crash (removed and noted at the next record)")
        if self.behind:
            noted.append("the head is one record behind (a crash; moved on at the next record)")
        if self.anchor_seen:
            noted.append("matches the keyring's anchor")
        return f"OK: {records} records, chain intact, {how}" + "".join(f"; {x}" for x in noted)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _rolled_back(anchor: dict[str, Any], head: dict[str, Any]) -> str:
    """Why a trail whose head is `head` cannot be the one the keyring anchored ('' when it can be)."""
    a_seq = int(anchor.get("seq", 0))
    if head["seq"] < a_seq:
        return f"the trail was rolled back or erased: it ends at record {head['seq']}, the anchor is record {a_seq}"
    if head["seq"] == a_seq and head["hash"] != anchor.get("hash"):
        return f"record {a_seq} was replaced: it is not the record the keyring's anchor holds"
    return ""


def _broken(anchor: dict[str, Any] | None) -> dict[str, Any]:
    return {"broken": anchor["broken"]} if anchor and anchor.get("broken") else {}


def _last_record(tail: bytes) -> dict[str, Any] | None:
    lines = [x for x in tail.split(b"\n") if x.strip()]
    if not lines:
        return None
    try:
        rec = json.loads(lines[-1].decode("utf-8", "surrogateescape"))
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
