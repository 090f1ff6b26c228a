"""The laptop's side of team mode (issue 29): the team index, searched beside this computer's folders.

`TeamIndex` talks to the Sealroom service over HTTPS (the standard library only; IT's CA certificate from
the policy's `team_ca`, the user's token from the OS keyring). The address must be loopback or one of the
policy's `allowed_hosts`: the offline guard lets nothing else through.

`MergedRetriever` is a `PassageRetriever` over both: it searches the laptop's index and the team's at once,
fuses the two rankings (reciprocal rank, as the retriever fuses its own), and labels each passage with its
origin. When the team index cannot be reached the answer comes from this computer's folders, and says so
(`UNREACHABLE`); after a failure the team is not tried again for `RETRY_S` seconds, so an offline laptop
answers as fast as one without team mode. Evidence, generation and verification stay on the laptop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from sealroom.core.protocols import Hit, Passage
from sealroom.core.runtime import logs, offline, secrets_store
from sealroom.core.runtime.errors import SealroomError, ServerUnreachable

UNREACHABLE = "team index unreachable — answering from this computer's folders"
BUSY = "team index busy — answering from this computer's folders this time; ask again in a moment"
TOKEN_ACCOUNT = "team-token"  # the keyring entry's account; its scope is the service's address
RETRY_S = 30.0
RRF_K = 60
TEAM = "team"


class TeamRefused(SealroomError):
    """The service refused the request (no valid token, a malformed request): the message says why."""


class TeamCannotSearch(ServerUnreachable):
    """The service answers, but a server behind it does not (its catalog, PostgreSQL): said as such."""

    def __init__(self, host: str, port: int, why: str) -> None:
        self.host, self.port = host, port
        SealroomError.__init__(self, f"the team index at {host}:{port} runs but cannot search now: {why}")


class TeamBusy(SealroomError):
    """The service runs but had no room for the request (HTTP 503 with `busy`): it is not down, so the
    next request tries it again at once."""


def hit_of(record: dict[str, Any]) -> Hit:
    """A passage the service sent, labelled as the team's."""
    return Hit(
        str(record["chunk_id"]),
        str(record["path"]),
        record.get("page"),
        record.get("heading"),
        str(record.get("text", "")),
        float(record.get("score", 0.0)),
        record.get("similarity"),
        bool(record.get("keyword", False)),
        int(record.get("start", 0)),
        int(record.get("end", 0)),
        str(record.get("sha256", "")),
        int(record.get("seq", 0)),
        origin=TEAM,
    )


class TeamIndex:
    """The team service at `url` ("https://sealroom.firm.example:8443"), read with `token`."""

    def __init__(
        self,
        url: str,
        token: str | None,
        ca: str = "",
        allowed_hosts: Sequence[str] = (),
        timeout: float = 10.0,
        connect_timeout: float = 2.0,
    ) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SealroomError(f"the team server address {url!r} is not an https:// URL")
        self.url = url.strip().rstrip("/")
        self.host, self.https = parts.hostname, parts.scheme == "https"
        self.port = parts.port or (443 if self.https else 80)
        self.token, self.ca = token, ca
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._allowed = {h.casefold() for h in allowed_hosts}
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._context: ssl.SSLContext | None = None
        self.embedding_model = ""  # the service's, from its last search: similarities compare if it is ours

    @property
    def label(self) -> str:
        return f"team {self.url}"

    # --- the connection ---------------------------------------------------------------------------------
    def _unreachable(self, why: str) -> ServerUnreachable:
        return ServerUnreachable("the team index", self.host, self.port, why)

    def _connect(self) -> http.client.HTTPConnection:
        try:
            admitted = offline.admit(self.host, self.port, self._allowed)
        except OSError as exc:
            raise self._unreachable(f"its name does not resolve ({exc})") from None
        if not admitted:
            raise TeamRefused(
                f"the team server {self.url} is not in the IT policy's allowed_hosts: Sealroom connects "
                "to no other machine unless IT lists it"
            )
        if self.https:
            if self._context is None:
                self._context = ssl.create_default_context(cafile=self.ca or None)
            context = self._context
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except ssl.SSLError as exc:
            raise TeamRefused(
                f"the team server {self.url} did not prove who it is ({exc.reason or exc}); check team_ca in "
                "the IT policy"
            ) from None
        except OSError as exc:
            raise self._unreachable(f"it does not answer ({exc.strerror or type(exc).__name__})") from None
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        return conn

    def _send(self, path: str, body: dict[str, Any] | None = None) -> http.client.HTTPResponse:
        """The service's response to a request (the caller reads it and closes `response.conn`)."""
        if time.monotonic() < self._down_until:
            raise self._unreachable("it did not answer a moment ago; it is tried again shortly")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            kept: http.client.HTTPConnection | None = getattr(self._local, "conn", None)  # kept open
            self._local.conn = None
            while True:
                conn = kept or self._connect()
                try:
                    conn.request("POST" if body is not None else "GET", path, body=data, headers=headers)
                    response = conn.getresponse()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    if kept is None:
                        raise self._unreachable(f"it stopped answering ({type(exc).__name__})") from None
                    kept = None  # the server closed the kept connection meanwhile: once more on a new one
        except ServerUnreachable:
            self._down_until = time.monotonic() + RETRY_S
            raise
        if response.status >= 400:
            try:
                reply = json.loads(response.read())
                message, busy = str(reply.get("error", "")), bool(reply.get("busy"))
            except (OSError, ValueError, http.client.HTTPException, AttributeError):
                message, busy = "", False
            conn.close()
            if response.status == 503 and busy:  # every catalog connection in use: a queue, not an outage
                raise TeamBusy(f"the team server {self.url} is busy: {message}")
            if response.status == 503:  # the service runs but its catalog server does not
                raise TeamCannotSearch(self.host, self.port, message or "it is unavailable (HTTP 503)")
            raise TeamRefused(f"the team server refused the request (HTTP {response.status}): {message}")
        response.conn = conn  # type: ignore[attr-defined]
        return response

    def _json(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._send(path, body)
        conn = response.conn  # type: ignore[attr-defined]
        try:
            reply = dict(json.loads(response.read()))
        except (OSError, ValueError, http.client.HTTPException) as exc:
            conn.close()
            raise self._unreachable(f"it sent no whole answer ({type(exc).__name__})") from None
        self._release(conn, whole=not response.will_close)
        return reply

    def _release(self, conn: http.client.HTTPConnection, whole: bool) -> None:
        """A connection whose response was read to its end, kept for this thread's next request (no new
        connection and TLS handshake each time); one cut short, or that the server closes, closed."""
        if whole:
            self._local.conn = conn
        else:
            conn.close()

    # --- what it offers -------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 6,
        types: list[str] | None = None,
        context: str = "",
        since: float | None = None,
    ) -> tuple[list[Hit], str]:
        """The team's passages for `query` that this user may read, and what it could not do ('' if all)."""
        reply = self._json(
            "/v1/search", {"query": query, "k": k, "types": types, "context": context, "since": since}
        )
        self.embedding_model = str(reply.get("embedding_model", ""))
        return [hit_of(h) for h in reply.get("hits", [])], str(reply.get("notice", ""))

    def known_words(self, words: list[str]) -> set[str]:
        return set(self._json("/v1/words", {"words": words}).get("known", []))

    def ask(self, question: str, context: str = "", generate: bool = True) -> Iterator[dict[str, Any]]:
        """The service's answer as it comes: {"event": "evidence"}, {"event": "piece"}…, {"event": "answer"}."""
        response = self._send("/v1/ask", {"question": question, "context": context, "generate": generate})
        conn, whole = response.conn, False  # type: ignore[attr-defined]
        try:
            for line in response:
                if line.strip():
                    yield json.loads(line)
            whole = not response.will_close
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(f"it stopped answering ({type(exc).__name__})") from None
        finally:
            self._release(conn, whole)

    def passage(self, sha256: str, seq: int, start: int, end: int) -> Passage:
        """A team passage with the rest of its section around it, for the preview (read behind the wall)."""
        reply = self._json("/v1/passage", {"sha256": sha256, "seq": seq, "start": start, "end": end})
        lines = reply.get("lines")
        return Passage(
            str(reply["before"]),
            str(reply["text"]),
            str(reply["after"]),
            reply.get("page"),
            (int(lines[0]), int(lines[1])) if lines else None,
        )

    def health(self) -> dict[str, Any]:
        return self._json("/health")


def stored_token(url: str) -> str | None:
    """The user's team token, from the OS keyring (`sealroom team login`)."""
    return secrets_store.get(TOKEN_ACCOUNT, url.rstrip("/"))


def fuse(rankings: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """Rankings from different indexes in one, by reciprocal rank (their scores are not comparable)."""
    fused: dict[tuple[str, str], tuple[float, Hit]] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            key = (hit.origin, hit.chunk_id)
            score = fused.get(key, (0.0, hit))[0] + 1.0 / (RRF_K + rank + 1)
            fused[key] = (score, hit)
    ordered = sorted(fused.values(), key=lambda item: -item[0])
    seen: set[str] = set()
    out: list[Hit] = []
    for score, hit in ordered:
        if hit.text in seen:  # the same passage in both indexes (a document on the share and the laptop)
            continue
        seen.add(hit.text)
        out.append(dataclasses.replace(hit, score=score))  # its place among both: what relevance shows
    return out[:k]


class MergedRetriever:
    """A `PassageRetriever` over this computer's index and the team's (see the module's note)."""

    _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="team")

    def __init__(self, local: Any, team: TeamIndex) -> None:
        self.local, self.team = local, team
        self.notice = ""
        self.indexes: list[str] = []  # which indexes the last search's passages came from

    def search(
        self,
        query: str,
        k: int = 6,
        folders: list[str] | None = None,
        types: list[str] | None = None,
        context: str = "",
        since: float | None = None,
    ) -> list[Hit]:
        """Both indexes at once; `folders` limits this computer's (the team's folders are the team's)."""
        remote = self._pool.submit(self.team.search, query, k, types, context, since)
        hits = self.local.search(query, k, folders, types, context, since)
        notice = getattr(self.local, "notice", "")
        try:
            team, team_notice = remote.result()
        except ServerUnreachable as exc:
            logs.problem("team index unreachable", detail=f"{exc.host}:{exc.port}")
            team, team_notice = [], UNREACHABLE
        except TeamBusy as exc:
            logs.problem("team index busy", detail=str(exc))
            team, team_notice = [], BUSY
        except TeamRefused as exc:
            logs.problem("team index refused the request", detail=str(exc))
            team, team_notice = [], f"{exc} — answering from this computer's folders"
        self.notice = "; ".join(n for n in (team_notice, notice) if n)
        merged = fuse([hits, team, *self._by_meaning(hits, team)], k)
        self.indexes = [
            name
            for name, present in (("local", any(not h.origin for h in merged)), (self.team.label, bool(team)))
            if present
        ]
        return merged

    def _by_meaning(self, local: list[Hit], team: list[Hit]) -> list[list[Hit]]:
        """Both indexes' passages ranked by their similarity to the question, when it compares: both embed
        with the same model, and both searched by meaning. Beside the two rankings, it keeps a weak match
        from one index from ranking as high as a strong one from the other only for being first there."""
        model = getattr(getattr(self.local, "embedder", None), "model_id", None)
        scored = [h for h in local + team if h.similarity is not None]
        if not model or model != self.team.embedding_model:
            return []
        if not any(h.origin for h in scored) or all(h.origin for h in scored):  # one side has none
            return []
        return [sorted(scored, key=lambda h: -(h.similarity or 0.0))]

    def known_words(self, words: list[str]) -> set[str]:
        known = set(self.local.known_words(words))
        rest = [w for w in words if w not in known]
        if rest:
            with contextlib.suppress(ServerUnreachable, TeamRefused, TeamBusy):  # the search says so
                known |= self.team.known_words(rest)
        return known
