"""The audit trail: append-only, hash-chained records of what was asked, answered and exported.

Each record is one JSON line in `audit/audit.jsonl` holding the sha256 of the record before
it (`prev`) and its own (`hash`, over the canonical JSON of every other field). `head.json`
keeps the last record's sequence number and hash (so a cut-off tail is caught) and the base
the chain starts from after retention pruned older records. Where the OS keyring holds (or
can take) an HMAC key, each record and the head also carry `mac`, so someone who edits a
record and recomputes the chain is still caught. Records never hold document text: questions
are hashed unless the IT policy says to record them.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import secrets_store

GENESIS = "0" * 64
KEY_ACCOUNT = "audit-hmac-key"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "signed": self.signed,
            "message": self.message,
            "broken_seq": self.broken_seq,
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
            head = self._head()
            rec: dict[str, Any] = {
                "seq": head["seq"] + 1,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "ts": round(time.time(), 3),
                "user": self.user,
                "event": event,
                "data": data,
                "prev": head["hash"],
            }
            rec["hash"] = hashlib.sha256(_canonical(rec)).hexdigest()
            key = self.key()
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
            self._write_head({**head, "seq": rec["seq"], "hash": rec["hash"]})
            return rec

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

    def _write_head(self, head: dict[str, Any]) -> None:
        body = {k: head[k] for k in ("seq", "hash", "base_seq", "base_prev")}
        key = self.key(create=False)
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
            self._write_head(head)
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
        """OK, or the first record that was edited, deleted, reordered, or where the trail was cut."""
        key = self.key(create=False)
        try:
            raw_head = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raw_head = None
        except (OSError, ValueError):
            return Verification(False, 0, 0, "the trail's head file is unreadable")
        lines = list(self._lines())
        if raw_head is None:
            if lines:
                return Verification(False, 0, 0, "the trail's head file is missing", 1)
            return Verification(True, 0, 0, "OK: the audit trail is empty")
        if key and raw_head.get("mac") != hmac.new(key, _canonical(raw_head), "sha256").hexdigest():
            return Verification(False, 0, 0, "the trail's head file was changed (signature does not match)")
        seq, prev = int(raw_head.get("base_seq", 1)), raw_head.get("base_prev", GENESIS)
        signed = 0
        for n, line in enumerate(lines):
            try:
                rec = json.loads(line)
            except ValueError:
                return Verification(False, n, signed, f"record {seq} is not valid JSON", seq)
            if not isinstance(rec, dict) or rec.get("seq") != seq:
                got = rec.get("seq") if isinstance(rec, dict) else None
                what = "missing (deleted)" if isinstance(got, int) and got > seq else "out of order"
                return Verification(
                    False, n, signed, f"record {seq} is {what}: found record {got} there", seq
                )
            if rec.get("prev") != prev:
                return Verification(False, n, signed, f"record {seq} does not follow record {seq - 1}", seq)
            if hashlib.sha256(_canonical(rec)).hexdigest() != rec.get("hash"):
                return Verification(False, n, signed, f"record {seq} was changed (hash does not match)", seq)
            if key:
                if "mac" not in rec and signed:
                    return Verification(False, n, signed, f"record {seq} lost its signature", seq)
                if "mac" in rec:
                    if rec["mac"] != hmac.new(key, rec["hash"].encode(), "sha256").hexdigest():
                        return Verification(
                            False, n, signed, f"record {seq} was changed (signature does not match)", seq
                        )
                    signed += 1
            prev, seq = rec["hash"], seq + 1
        if seq - 1 != raw_head.get("seq") or prev != raw_head.get("hash"):
            if seq - 1 < int(raw_head.get("seq", 0)):
                return Verification(
                    False,
                    len(lines),
                    signed,
                    f"the trail was cut: records {seq} to {raw_head.get('seq')} are missing",
                    seq,
                )
            return Verification(False, len(lines), signed, "the trail does not end where its head says", seq)
        how = f"{signed} signed with the keyring's key" if signed else "not signed (no keyring key)"
        return Verification(True, len(lines), signed, f"OK: {len(lines)} records, chain intact, {how}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
