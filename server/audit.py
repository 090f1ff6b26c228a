"""The service's audit trail (issue 29): who read what from the team index, and every refusal.

One row per request in PostgreSQL (`team_audit`), shared by every replica: the time, the user (or, refused,
the first characters of the token's hash), the endpoint, the HTTP status, the SHA-256 of the query (its
words only when IT sets `audit_question_text`, as on the laptop), and the passages sent (chunk ids). A
trigger refuses UPDATE and DELETE, so the service's own role cannot rewrite the trail; IT reads it with
`sealroom-server audit`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from sealroom.server.tokens import Query

SCHEMA = """
CREATE TABLE IF NOT EXISTS team_audit (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    user_name TEXT NOT NULL,
    event TEXT NOT NULL,
    status INTEGER NOT NULL,
    query_sha256 TEXT,
    passages TEXT[] NOT NULL DEFAULT '{}',
    client TEXT
);
CREATE INDEX IF NOT EXISTS team_audit_user ON team_audit(user_name, at);
CREATE OR REPLACE FUNCTION team_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the team audit trail is append-only';
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS team_audit_append_only ON team_audit;
CREATE TRIGGER team_audit_append_only BEFORE UPDATE OR DELETE ON team_audit
    FOR EACH ROW EXECUTE FUNCTION team_audit_append_only();
"""


class TeamAudit:
    def __init__(self, query: Query) -> None:
        self._query = query
        query("SELECT pg_advisory_lock(2031)", ())
        try:
            query(SCHEMA, ())
        finally:
            query("SELECT pg_advisory_unlock(2031)", ())

    def record(
        self,
        user: str,
        event: str,
        status: int,
        text: str = "",
        passages: Sequence[str] = (),
        client: str = "",
    ) -> None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None
        self._query(
            "INSERT INTO team_audit(at, user_name, event, status, query_sha256, passages, client)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (time.time(), user, event, status, digest, list(passages), client or None),
        )

    def records(self, user: str | None = None, last: int = 50) -> list[dict[str, Any]]:
        where, params = ("WHERE user_name = %s", [user]) if user else ("", [])
        rows = self._query(
            "SELECT seq, at, user_name, event, status, query_sha256, passages, client FROM team_audit"
            f" {where} ORDER BY seq DESC LIMIT %s",
            (*params, last),
        )
        keys = ("seq", "at", "user", "event", "status", "query_sha256", "passages", "client")
        return [dict(zip(keys, r, strict=True)) for r in reversed(rows)]
