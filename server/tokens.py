"""Per-user tokens IT issues (issue 29): a token names a user and the groups they may read.

Only a token's SHA-256 is kept, in the service's PostgreSQL database, so every replica of the service reads
the same list and a stolen backup holds no usable token. IT issues one with `sealroom-server token add USER
--groups A,B` (the token is printed once), and the user keeps it in their keyring (`sealroom team login`).
A revoked token is refused from the next lookup on (replicas cache a lookup for `CACHE_S` seconds).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS team_tokens (
    sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    groups TEXT[] NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
"""
CACHE_S = 10.0
PREFIX = "srt_"  # Sealroom team token: recognisable in a leak scan


@dataclass(frozen=True)
class Reader:
    """Who is asking, and the groups whose folders they may read."""

    user: str
    groups: tuple[str, ...]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Tokens:
    def __init__(self, query: Query) -> None:
        """`query(sql, params)`: run one statement in the service's database (autocommit), its rows."""
        self._query = query
        self._cache: dict[str, tuple[float, Reader | None]] = {}
        self._lock = threading.Lock()
        query("SELECT pg_advisory_lock(2030)", ())
        try:
            query(SCHEMA, ())
        finally:
            query("SELECT pg_advisory_unlock(2030)", ())

    def issue(self, user: str, groups: Sequence[str]) -> str:
        """A new token for `user` reading `groups`; only its hash is stored."""
        if not user.strip():
            raise ValueError("a token needs a user name")
        token = PREFIX + secrets.token_urlsafe(32)
        self._query(
            "INSERT INTO team_tokens(sha256, user_name, groups, issued_at) VALUES (%s, %s, %s, %s)",
            (digest(token), user.strip(), list(dict.fromkeys(g for g in groups if g)), time.time()),
        )
        return token

    def revoke(self, user: str) -> int:
        """Revoke every token of `user`; returns how many."""
        rows = self._query(
            "UPDATE team_tokens SET revoked_at = %s WHERE user_name = %s AND revoked_at IS NULL RETURNING 1",
            (time.time(), user),
        )
        with self._lock:
            self._cache.clear()
        return len(rows)

    def listing(self) -> list[tuple[str, list[str], float, float | None]]:
        """(user, groups, issued at, revoked at) of every token, newest first."""
        rows = self._query(
            "SELECT user_name, groups, issued_at, revoked_at FROM team_tokens ORDER BY issued_at DESC", ()
        )
        return [(r[0], list(r[1]), r[2], r[3]) for r in rows]

    def reader(self, token: str) -> Reader | None:
        """The reader a token names, or None (unknown or revoked)."""
        key = digest(token)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached and now - cached[0] < CACHE_S:
            return cached[1]
        rows = self._query(
            "SELECT user_name, groups FROM team_tokens WHERE sha256 = %s AND revoked_at IS NULL", (key,)
        )
        reader = Reader(rows[0][0], tuple(rows[0][1])) if rows else None
        with self._lock:
            self._cache[key] = (now, reader)
        return reader

    def refused_as(self, token: str) -> str:
        """Who a refused token names in the audit trail: its user when it was issued and is now revoked,
        else the first characters of its hash (a forged or mistyped token)."""
        rows = self._query("SELECT user_name FROM team_tokens WHERE sha256 = %s", (digest(token),))
        return f"{rows[0][0]} (revoked token)" if rows else "token:" + digest(token)[:12]
