"""Team mode's passages in PostgreSQL (issue 29): the catalog's files and passages with their keyword index,
behind the same `PassageReads` the embedded SQLite catalog implements, plus matter walls.

A file carries `groups`, the groups allowed to read it. Every read that returns passages, names or words
takes `groups` (None: no wall, as on the laptop) and the wall is applied inside the SQL: a passage is
visible when some file holding its content has a group in common with the caller (`&&`), so nothing
behind a wall is ever retrieved, ranked against or counted (`rare_matches`' counts, the keyword ranking's
document frequencies are those of the visible passages only).

Keyword search takes the retriever's FTS5 match strings ('"a" OR "b"': the quoted terms, any of them) and
ranks like FTS5's bm25 does: each term's weight is its inverse document frequency (bm25's), a passage's
score the sum over the terms it holds of idf x ts_rank (heading words weighted A, twice the passage's B,
'english' stemming).

psycopg 3 is imported on first use (a laptop never needs it): a pool of autocommit connections.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import socket
import string
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sealroom.core.protocols import Chunk, FileRow
from sealroom.core.runtime.errors import ServerBusy, ServerUnreachable

if TYPE_CHECKING:
    from sealroom.core.store.catalog import Catalog

CONFIG = "english"
#: ts_rank's weights, in its order {D, C, B, A}: a heading's words (A) count twice a passage's (B)
WEIGHTS = "{0, 0, 0.5, 1.0}"
#: ts_rank's normalisation: none. Passages are cut to a bounded length by the chunker, so bm25's length
#: term matters little; on the eval set (keyword search alone, hit@5 over 54 questions) FTS5 scores 0.963,
#: this 0.963, 1 + log(length) 0.944, length 0.759, ts_rank or ts_rank_cd without idf 0.926.
NORMALIZATION = 0

#: ASCII punctuation, read as spaces on both sides of the index (passages and query terms), so PostgreSQL
#: splits words where FTS5's unicode61 tokenizer does. Its own parser would otherwise keep a host, an
#: e-mail address, a URL, a file name or a version as one token: 'example' in www.example.com, 'document'
#: in google-doc-document.pdf or '2' in 2.1 could not be found, while the laptop finds them.
PUNCTUATION = string.punctuation
#: keyword search at scale: a term in more passages than this (and than COMMON_SHARE of them) is common
COMMON = 2000
COMMON_SHARE = 0.01
CANDIDATES = 4000  # the most passages one keyword search ranks
POOL_WAIT_S = 3.0  # a wait for a pooled connection, after which the server is checked
BUSY_WAIT_S = 60.0  # the longest a request queues for a connection while the server answers
STAMP_S = 2.0  # how stale the cached counts and names may be after a publish
#: the advisory lock a publish holds, and a backup: never both at once (server/publish.py, server/backup.py)
PUBLISH_LOCK = 2930
_SPACES = str.maketrans(PUNCTUATION, " " * len(PUNCTUATION))

#: PostgreSQL text holds no lone surrogate, and a file name that is not UTF-8 reaches Python with one per
#: undecodable byte (os.fsdecode). Every string sent is stored with each surrogate as ESC + its 4 hex
#: digits, and ESC itself as ESC + "0000"; every text read is turned back. Other strings are unchanged.
#: (The SQLite catalog's escape, NUL + 2 hex digits, cannot be used: PostgreSQL text holds no NUL either.)
ESC = "\U0010fffd"
_TO_PG = re.compile("[\ud800-\udfff\U0010fffd]")
_FROM_PG = re.compile("\U0010fffd([0-9a-f]{4})")


def to_pg(text: str) -> str:
    if not _TO_PG.search(text):
        return text
    return _TO_PG.sub(lambda m: ESC + ("0000" if m.group(0) == ESC else f"{ord(m.group(0)):04x}"), text)


def from_pg(text: str) -> str:
    if ESC not in text:
        return text
    return _FROM_PG.sub(lambda m: ESC if m.group(1) == "0000" else chr(int(m.group(1), 16)), text)


@functools.cache
def _adapters() -> tuple[type, type, type]:
    """The dumper and text loaders (text and binary format) that escape and unescape (made once)."""
    from psycopg.types.string import StrDumperUnknown, TextBinaryLoader, TextLoader

    class Dumper(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(to_pg(obj))

    class Unescaping:
        def load(self, data: Any) -> Any:
            text = super().load(data)  # type: ignore[misc]
            return from_pg(text) if isinstance(text, str) else text

    class Loader(Unescaping, TextLoader):
        pass

    class BinaryLoader(Unescaping, TextBinaryLoader):
        pass

    return Dumper, Loader, BinaryLoader


def _escaping(conn: Any) -> None:
    """Set up a pooled connection to send and read strings through `to_pg` and `from_pg`."""
    dumper, loader, binary_loader = _adapters()
    conn.adapters.register_dumper(str, dumper)
    for name in ("text", "varchar", "bpchar", "name"):
        conn.adapters.register_loader(name, loader)
        conn.adapters.register_loader(name, binary_loader)


def split_words(text: str) -> str:
    """`text` with its ASCII punctuation read as spaces, as the passages are indexed."""
    return text.translate(_SPACES)


def _words_sql(column: str) -> str:
    punctuation = PUNCTUATION.replace("'", "''")
    return f"translate({column}, '{punctuation}', '{' ' * len(PUNCTUATION)}')"


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS files (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    folder_id BIGINT NOT NULL DEFAULT 0,
    folder TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'indexed', 'failed', 'skipped')),
    reason TEXT,
    pages INTEGER,
    groups TEXT[] NOT NULL DEFAULT '{{}}',
    done_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
CREATE INDEX IF NOT EXISTS files_groups ON files USING GIN (groups);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    page INTEGER,
    heading TEXT,
    "start" INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    tsv TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('{CONFIG}', {_words_sql("coalesce(heading, '')")}), 'A')
        || setweight(to_tsvector('{CONFIG}', {_words_sql("text")}), 'B')
    ) STORED
);
CREATE INDEX IF NOT EXISTS chunks_sha ON chunks(sha256, seq);
CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING GIN (tsv);
CREATE OR REPLACE AGGREGATE sealroom_any(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);
CREATE OR REPLACE AGGREGATE sealroom_all(tsquery) (SFUNC = tsquery_and, STYPE = tsquery);
"""

_CHUNK_COLUMNS = 'c.id, c.sha256, c.seq, c.text, c.page, c.heading, c."start", c."end"'
_FILE_COLUMNS = "f.id, f.folder_id, f.path, f.size, f.mtime_ns, f.sha256, f.status, f.reason, f.pages"
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')
_OPERATORS = frozenset(["OR", "AND", "NOT", "NEAR"])


def match_terms(match: str) -> list[str]:
    """The terms of an FTS5 match string as the retriever writes it ('"a" OR "b"'), any of which may
    match; bare words count as terms too (operators and FTS5 punctuation aside)."""
    terms = [t.replace('""', '"') for t in _QUOTED.findall(match)]
    rest = _QUOTED.sub(" ", match)
    terms += [w for w in re.findall(r"[\w.]+", rest) if w not in _OPERATORS]
    return [t for t in dict.fromkeys(terms) if t.strip()]


def _wall(groups: Sequence[str] | None, alias: str = "c") -> tuple[str, list[Any]]:
    """The SQL condition (and its parameter) that a passage of `alias` is visible to `groups`."""
    if groups is None:
        return "TRUE", []
    return (
        f"EXISTS (SELECT 1 FROM files w WHERE w.sha256 = {alias}.sha256 AND w.groups && %s::text[])",
        [list(groups)],
    )


def _file_wall(groups: Sequence[str] | None, alias: str = "f") -> tuple[str, list[Any]]:
    if groups is None:
        return "TRUE", []
    return f"{alias}.groups && %s::text[]", [list(groups)]


def _key(groups: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if groups is None else tuple(sorted(set(groups)))


def _chunk(r: Sequence[Any]) -> Chunk:
    return Chunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])


def _file_row(r: Sequence[Any]) -> FileRow:
    return FileRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])


class PostgresPassages:
    """`PassageReads` over a PostgreSQL database (`dsn`), its schema created when missing."""

    def __init__(self, dsn: str, connections: int = 12) -> None:
        """`connections`: the most this object holds open at once (a pool, shared by every thread: a
        service answering many readers at once waits for one rather than exhausting the server's)."""
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        # per reader's groups: the visible passages' count and the document names, with the stamp of the
        # indexed files they were read at
        self._counts: dict[tuple[str, ...] | None, tuple[int, tuple[Any, ...]]] = {}
        self._names: dict[tuple[str, ...] | None, tuple[tuple[Any, ...], list[tuple[str, str, str]]]] = {}
        self._shares: tuple[tuple[Any, ...], dict[str, float], int] | None = None
        self._stamped: tuple[float, tuple[Any, ...]] | None = None
        self._cache_lock = threading.Lock()
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=connections,
            # never prepared: after five runs psycopg prepares a statement and PostgreSQL may switch it to a
            # generic plan, which for a text search (its terms unknown) reads the whole index: at 200,000
            # passages that made keyword search 20 times slower (bench/team.py); pgbouncer's transaction
            # pooling, the way to more readers, wants no prepared statements either
            kwargs={"autocommit": True, "connect_timeout": 3, "prepare_threshold": None},
            check=ConnectionPool.check_connection,  # a connection cut by a restart is replaced, not used
            configure=_escaping,
            timeout=POOL_WAIT_S,
            open=False,
        )
        self._pool.open(wait=False)
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(2029)")  # two services starting at once
            cur.execute(SCHEMA)

    # --- connections ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection from the pool; the server down or restarting is `ServerUnreachable` (and the next
        call connects again: the service recovers without restarting its clients). Every connection busy
        is waited for (up to `BUSY_WAIT_S`) as long as the server answers: a queue, not an outage."""
        import psycopg
        from psycopg_pool import PoolTimeout

        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            try:
                conn = self._pool.getconn(timeout=POOL_WAIT_S)
                break
            except PoolTimeout as exc:
                if not self._answers():
                    raise self.unreachable() from exc
                if time.monotonic() > deadline:
                    raise ServerBusy(
                        f"the team's catalog (PostgreSQL) is busy: every connection was in use for "
                        f"{BUSY_WAIT_S:.0f} s; try again in a moment"
                    ) from exc
        try:
            yield conn
        except psycopg.OperationalError as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise  # the statement, not the server
            raise self.unreachable() from exc
        finally:
            self._pool.putconn(conn)  # a broken one is discarded by the pool

    def _answers(self) -> bool:
        """Whether the database server accepts a connection at all (a busy pool, or a server gone)."""
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(self.dsn)
        host = str(info.get("host") or "localhost")
        try:
            if host.startswith("/"):
                return True  # a Unix socket: the pool's own errors tell
            socket.create_connection((host, int(info.get("port") or 5432)), timeout=1).close()
            return True
        except OSError:
            return False

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def publishing(self) -> Iterator[None]:
        """Held while a publish writes: a backup waits for it, and a publish waits for a backup, so the
        copies of PostgreSQL and Chroma never straddle a publish (a deletion in one and not the other)."""
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (PUBLISH_LOCK,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (PUBLISH_LOCK,))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement in this database (autocommit), its rows: for the service's own tables."""
        return self._query(sql, params)

    def unreachable(self) -> ServerUnreachable:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(self.dsn)
        host, port = str(info.get("host") or "localhost"), int(info.get("port") or 5432)
        return ServerUnreachable(
            "the team's catalog (PostgreSQL)",
            host,
            port,
            "check that the database server runs; the request can be repeated once it is back",
        )

    # --- writes (the loader now, the team service later) -----------------------------------------------
    def upsert_file(
        self,
        path: str,
        sha256: str,
        status: str,
        folder: str,
        mtime_ns: int,
        size: int,
        groups: Sequence[str],
        folder_id: int = 0,
        reason: str | None = None,
        pages: int | None = None,
    ) -> None:
        self._query(
            """INSERT INTO files(folder_id, folder, path, size, mtime_ns, sha256, status, reason, pages, groups,
                                 done_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT(path) DO UPDATE SET folder_id = excluded.folder_id, folder = excluded.folder,
                   size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256,
                   status = excluded.status, reason = excluded.reason, pages = excluded.pages,
                   groups = excluded.groups, done_at = excluded.done_at""",
            (
                folder_id,
                folder,
                path,
                size,
                mtime_ns,
                sha256,
                status,
                reason,
                pages,
                list(groups),
                None if status == "pending" else time.time(),
            ),
        )

    def finish_content(
        self,
        sha256: str,
        status: str,
        reason: str | None,
        pages: int | None,
        chunks: Sequence[Chunk],
    ) -> list[str]:
        """A parsed version's passages and the status of every pending file with this content, in one
        transaction (as the catalog's `finish_content`). Returns the paths that changed state."""
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("DELETE FROM chunks WHERE sha256 = %s", (sha256,))
            if chunks:
                with cur.copy(
                    'COPY chunks (id, sha256, seq, text, page, heading, "start", "end") FROM STDIN'
                ) as copy:
                    for c in chunks:
                        copy.write_row((c.id, c.sha256, c.seq, c.text, c.page, c.heading, c.start, c.end))
            cur.execute(
                "UPDATE files SET status = %s, reason = %s, pages = %s, done_at = %s"
                " WHERE sha256 = %s AND status = 'pending' RETURNING path",
                (status, reason, pages, time.time(), sha256),
            )
            return sorted(r[0] for r in cur.fetchall())

    def remove_file(self, path: str) -> bool:
        """Forget a file; its passages stay until no file holds their content (`orphan_chunk_ids`)."""
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM files WHERE path = %s", (path,))
            return bool(cur.rowcount)

    def orphan_chunk_ids(self) -> list[str]:
        rows = self._query(
            "SELECT c.id FROM chunks c WHERE NOT EXISTS"
            " (SELECT 1 FROM files f WHERE f.sha256 = c.sha256 AND f.status = 'indexed')"
        )
        return [r[0] for r in rows]

    def delete_chunks(self, ids: Sequence[str]) -> None:
        self._query("DELETE FROM chunks WHERE id = ANY(%s)", (list(ids),))

    def load(self, catalog: Catalog, groups_of_folder: dict[str, list[str]]) -> int:
        """Copy a SQLite catalog's indexed files and their passages; a file's groups are its watched
        folder's (a folder missing from `groups_of_folder`: no group, so nobody behind a wall reads it).
        Returns how many files were copied."""
        folders = dict(catalog.folders())
        files = [f for f in catalog.files() if f.status == "indexed"]
        for f in files:
            folder = folders.get(f.folder_id, "")
            self.upsert_file(
                f.path,
                f.sha256,
                "pending",
                folder,
                f.mtime_ns,
                f.size,
                groups_of_folder.get(folder, []),
                folder_id=f.folder_id,
            )
        for sha, kept in {f.sha256: f for f in files}.items():
            self.finish_content(sha, "indexed", kept.reason, kept.pages, catalog.chunks_of(sha))
        self._query("ANALYZE files")
        self._query("ANALYZE chunks")
        return len(files)

    # --- PassageReads -----------------------------------------------------------------------------------
    def chunks_by_id(self, ids: Sequence[str], *, groups: Sequence[str] | None = None) -> dict[str, Chunk]:
        wall, wp = _wall(groups)
        rows = self._query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c WHERE c.id = ANY(%s) AND {wall}", (list(ids), *wp)
        )
        return {r[0]: _chunk(r) for r in rows}

    def chunks_at(
        self, places: Iterable[tuple[str, int]], *, groups: Sequence[str] | None = None
    ) -> dict[tuple[str, int], Chunk]:
        """The chunks at these (sha256, seq) places, those that exist (and are visible)."""
        wanted = sorted(set(places))
        if not wanted:
            return {}
        wall, wp = _wall(groups)
        rows = self._query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c"
            " JOIN unnest(%s::text[], %s::int[]) AS p(sha256, seq) ON c.sha256 = p.sha256 AND c.seq = p.seq"
            f" WHERE {wall}",
            ([s for s, _ in wanted], [q for _, q in wanted], *wp),
        )
        return {(r[1], r[2]): _chunk(r) for r in rows}

    def chunks_of(self, sha256: str, *, groups: Sequence[str] | None = None) -> list[Chunk]:
        wall, wp = _wall(groups)
        rows = self._query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c WHERE c.sha256 = %s AND {wall} ORDER BY c.seq",
            (sha256, *wp),
        )
        return [_chunk(r) for r in rows]

    def keyword_search(
        self,
        match: str,
        limit: int,
        within: Sequence[str] | None = None,
        *,
        groups: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Chunk ids ranked best first (see the module's note on ranking); `within`: only the chunks of
        these contents (sha256; an empty list: none).

        Bounded at any size: a term is *common* when PostgreSQL's own statistics of the index (pg_stats'
        most common lexemes, kept by ANALYZE) put it in more than `COMMON` passages. A rare term's document
        frequency is counted exactly, inside the wall; a common term's is estimated from its share of all
        passages times the reader's visible count. The passages ranked are those holding a rare term; with
        no rare term, those holding every term, then any (at most `CANDIDATES` either way). Below `COMMON`
        passages in all (the eval set, a small index) every term is rare and the ranking is exact."""
        terms = [split_words(t) for t in match_terms(match)]
        if not terms or within == []:
            return []
        total = self._visible(groups)[0]
        shares, rows_seen = self._lexeme_shares()
        lexemes = dict(
            (r[0], list(r[1]))
            for r in self._query(
                f"SELECT t, tsvector_to_array(to_tsvector('{CONFIG}', t)) FROM unnest(%s::text[]) AS u(t)",
                (terms,),
            )
        )
        terms = [t for t in terms if lexemes.get(t)]
        if not terms:
            return []
        wall, wp = _wall(groups)
        common = max(COMMON, int(COMMON_SHARE * rows_seen))
        df: dict[str, float] = {}
        rare: list[str] = []
        for t in terms:
            share = min((shares.get(x, 0.0) for x in lexemes[t]), default=0.0)
            if share * rows_seen > common:
                df[t] = share * total  # estimated: counting it exactly would read most of the index
            else:
                rare.append(t)
        if rare:
            counted = self._query(
                "SELECT u.t, (SELECT count(*) FROM chunks c WHERE c.tsv @@ phraseto_tsquery"
                f"('{CONFIG}', u.t) AND {wall}) FROM unnest(%s::text[]) AS u(t)",
                (*wp, rare),
            )
            df.update((r[0], float(r[1])) for r in counted)
        idf = [math.log(1 + (total - df[t] + 0.5) / (df[t] + 0.5)) for t in terms]
        only, op = ("AND c.sha256 = ANY(%s)", [list(within)]) if within else ("", [])
        # only common terms: the passages holding them all, then any of them
        pools = [("sealroom_any", rare)] if rare else [("sealroom_all", terms), ("sealroom_any", terms)]
        out: dict[str, float] = {}
        for aggregate, pool in pools:
            sql = f"""
                WITH w AS (
                    SELECT phraseto_tsquery('{CONFIG}', t) AS tq, idf FROM unnest(%s::text[], %s::float8[]) AS u(t, idf)
                ),
                hits AS MATERIALIZED (
                    SELECT c.id, c.sha256, c.seq, c.tsv FROM chunks c
                    WHERE c.tsv @@ (SELECT {aggregate}(phraseto_tsquery('{CONFIG}', t)) FROM unnest(%s::text[]) AS p(t))
                    AND {wall} {only} LIMIT {CANDIDATES}
                ),
                ranked AS MATERIALIZED (
                    SELECT id, sha256, seq, score, round(score::numeric, 9) AS tied FROM (
                        SELECT h.id, h.sha256, h.seq,
                               sum(w.idf * ts_rank('{WEIGHTS}', h.tsv, w.tq, {NORMALIZATION})) AS score
                        FROM hits h JOIN w ON h.tsv @@ w.tq GROUP BY h.id, h.sha256, h.seq
                    ) s
                ),
                -- the limit-th best score: only passages scoring at least this can be in the answer, so
                -- only they need the tie-break's file name (looked up once each, not for every candidate)
                cut AS (SELECT tied FROM ranked ORDER BY tied DESC OFFSET %s LIMIT 1)
                SELECT id, score FROM ranked r
                WHERE NOT EXISTS (SELECT 1 FROM cut) OR r.tied >= (SELECT tied FROM cut)
                -- equal scores differ in their last bits with the order the plan sums them in: rounded, a tie
                -- goes to the first file by name, then the first passage, as on the laptop (FTS5 breaks ties in
                -- the order passages were indexed, which follows the scan's order of names): the same every run
                ORDER BY r.tied DESC,
                         (SELECT min(f.path) FROM files f WHERE f.sha256 = r.sha256), r.seq, r.id
                LIMIT %s
            """
            params = (terms, idf, pool, *wp, *op, max(limit - 1, 0), limit)
            for chunk_id, score in self._query(sql, params):
                out.setdefault(chunk_id, float(score))
            if len(out) >= limit:
                break
        return list(out.items())[:limit]

    def _lexeme_shares(self) -> tuple[dict[str, float], int]:
        """The most common lexemes of the passages and the share of passages holding each (PostgreSQL's
        statistics of the column, from ANALYZE), and how many passages they were counted over; read again
        when the indexed files change."""
        stamp = self._visible(None)[1]
        if self._shares is not None and self._shares[0] == stamp:
            return self._shares[1], self._shares[2]
        rows = self._query(
            "SELECT most_common_elems::text::text[], most_common_elem_freqs, (SELECT reltuples FROM pg_class"
            " WHERE relname = 'chunks') FROM pg_stats WHERE tablename = 'chunks' AND attname = 'tsv'"
        )
        shares: dict[str, float] = {}
        seen = 0
        if rows and rows[0][0]:
            elems, freqs, tuples = rows[0]
            shares = dict(zip(elems, freqs[: len(elems)], strict=True))
            seen = max(0, int(tuples or 0))
        with self._cache_lock:
            self._shares = (stamp, shares, seen)
        return shares, seen

    def known_words(self, words: list[str], *, groups: Sequence[str] | None = None) -> set[str]:
        """The words that occur (as any form of the word) in some visible passage (one round trip)."""
        asked = [w for w in dict.fromkeys(words) if re.fullmatch(r"\w+", w)]
        if not asked:
            return set()
        wall, wp = _wall(groups)
        rows = self._query(
            # a stop word's query is empty and would read every passage: those are left out first
            "SELECT u.w FROM (SELECT w, words FROM unnest(%s::text[], %s::text[]) AS a(w, words)"
            f" WHERE numnode(plainto_tsquery('{CONFIG}', words)) > 0 OFFSET 0) u WHERE EXISTS (SELECT 1 FROM chunks c"
            f" WHERE c.tsv @@ plainto_tsquery('{CONFIG}', u.words) AND {wall})",
            (asked, [split_words(w) for w in asked], *wp),
        )
        return {r[0] for r in rows}

    def document_names(self, *, groups: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
        """(sha256, path, first line of its text) of every indexed file the caller may read; read again only
        when the indexed files change (every question reads them: it may name a document)."""
        stamp, names = self._visible(groups)[1], self._names.get(_key(groups))
        if names is not None and names[0] == stamp:
            return names[1]
        wall, wp = _file_wall(groups)
        rows = self._query(
            "SELECT f.sha256, f.path, c.text FROM files f"
            " LEFT JOIN chunks c ON c.sha256 = f.sha256 AND c.seq = 0"
            f" WHERE f.status = 'indexed' AND {wall} ORDER BY f.path",
            wp,
        )
        out = [(r[0], r[1], (r[2] or "")[:160].strip().split("\n", 1)[0]) for r in rows]
        with self._cache_lock:
            self._names[_key(groups)] = (stamp, out)
        return out

    def _stamp(self) -> tuple[Any, ...]:
        """What the indexed files are (their count, last id, last change), read at most every `STAMP_S`
        seconds: a search reads it several times, and a publish shows within that time."""
        now = time.monotonic()
        if self._stamped is None or now - self._stamped[0] > STAMP_S:
            row = self._query("SELECT count(*), max(id), max(done_at) FROM files WHERE status = 'indexed'")[0]
            self._stamped = (now, tuple(row))
        return self._stamped[1]

    def _visible(self, groups: Sequence[str] | None) -> tuple[int, tuple[Any, ...]]:
        """How many passages `groups` may read (keyword ranking's document count), and the stamp of the
        indexed files it was counted at: counted again only when they change."""
        stamp = self._stamp()
        cached = self._counts.get(_key(groups))
        if cached is not None and cached[1] == stamp:
            return cached
        wall, wp = _wall(groups)
        total = int(self._query(f"SELECT count(*) FROM chunks c WHERE {wall}", wp)[0][0])
        with self._cache_lock:
            self._counts[_key(groups)] = (total, stamp)
        return total, stamp

    def rare_matches(
        self, terms: Iterable[str], most: int, *, groups: Sequence[str] | None = None
    ) -> set[str]:
        """Chunk ids holding a term found in at most `most` visible chunks (an exact rare token; one round
        trip for all the terms)."""
        asked = list(dict.fromkeys(terms))
        if not asked:
            return set()
        wall, wp = _wall(groups)
        rows = self._query(
            "SELECT u.term, m.id FROM (SELECT term, words FROM unnest(%s::text[], %s::text[]) AS a(term, words)"
            f" WHERE numnode(phraseto_tsquery('{CONFIG}', words)) > 0 OFFSET 0) u CROSS JOIN LATERAL"
            f" (SELECT c.id FROM chunks c WHERE c.tsv @@ phraseto_tsquery('{CONFIG}', u.words) AND {wall}"
            " LIMIT %s) m",
            (asked, [split_words(t) for t in asked], *wp, most + 1),
        )
        found: dict[str, list[str]] = {}
        for term, chunk_id in rows:
            found.setdefault(term, []).append(chunk_id)
        return {i for ids in found.values() if len(ids) <= most for i in ids}

    def files_for_content(
        self, sha256s: Iterable[str], *, groups: Sequence[str] | None = None
    ) -> dict[str, list[FileRow]]:
        """Indexed files holding these contents, those the caller may read."""
        keys = list(set(sha256s))
        out: dict[str, list[FileRow]] = {k: [] for k in keys}
        wall, wp = _file_wall(groups)
        rows = self._query(
            f"SELECT {_FILE_COLUMNS} FROM files f WHERE f.status = 'indexed' AND f.sha256 = ANY(%s)"
            f" AND {wall} ORDER BY f.path",
            (keys, *wp),
        )
        for r in rows:
            out[r[5]].append(_file_row(r))
        return out
