"""The catalog (catalog.sqlite): the source of truth for folders, files, chunks and chats.

The pending rows of `files` are the durable job queue: a file version is `indexed` only
once all its chunks are committed here, in one transaction. Chunks belong to a content
hash, not to a path, so a renamed, moved or copied file reuses them without re-embedding.
Chunks whose hash no file refers to any more are garbage (`orphan_chunk_ids`).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sealroom.core.protocols import DEFAULT_WORKSPACE, Chunk, FileRow
from sealroom.core.runtime.errors import SealroomError, UsageError

SCHEMA_VERSION = 3

#: The FTS5 keyword index over chunks and the triggers that keep it in step (schema 3: words are stemmed).
KEYWORD_INDEX = """
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.rowid, new.text, new.heading);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading) VALUES ('delete', old.rowid, old.text, old.heading);
END;
"""

#: What users said of answers and the runs of the regression set those make (`store/ratings.py`).
RATINGS = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    answer_id INTEGER,          -- the answer's message id (the rating stays when its chat is deleted)
    question TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
    reason TEXT,
    passage TEXT,               -- the chunk id of the passage that does answer (as search lists it)
    expected TEXT,              -- the answer the user expected, in their words
    cited TEXT NOT NULL,        -- JSON: the chunk ids the rated answer cited
    abstained INTEGER NOT NULL, -- whether the rated answer declined
    workspace TEXT NOT NULL DEFAULT 'default',
    created_at REAL NOT NULL,
    removed_at REAL
);
CREATE INDEX IF NOT EXISTS feedback_answer ON feedback(answer_id);
CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    trigger TEXT NOT NULL,      -- what asked for the run: a model or setting change, an upgrade, the user
    fingerprint TEXT NOT NULL,  -- JSON: everything that can change answers (`feedback.regression`)
    results TEXT NOT NULL       -- JSON: one result per feedback item
);
"""

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    id INTEGER PRIMARY KEY,
    workspace TEXT NOT NULL DEFAULT 'default',
    path TEXT NOT NULL UNIQUE,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'indexed', 'failed', 'skipped')),
    reason TEXT,
    pages INTEGER,
    queued_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
CREATE INDEX IF NOT EXISTS files_status ON files(status, queued_at);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    page INTEGER,
    heading TEXT,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_sha ON chunks(sha256, seq);
-- Contents whose chunks are committed (searchable by keyword, citable) but whose vectors are not all
-- stored yet: the indexer embeds them next, also after a crash. Older catalogs gain it on open.
CREATE TABLE IF NOT EXISTS unembedded (sha256 TEXT PRIMARY KEY);
"""
    + KEYWORD_INDEX
    + """CREATE TABLE IF NOT EXISTS chats (
    id INTEGER PRIMARY KEY,
    workspace TEXT NOT NULL DEFAULT 'default',
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT ''  -- where it was asked: 'window', 'cli', or '' (before this was kept)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    text TEXT NOT NULL,
    citations TEXT,
    created_at REAL NOT NULL,
    record TEXT  -- the answer's full record (Answer.to_dict), for the window and export
);
"""
    + RATINGS
)


# File names on Linux are bytes: one that is not UTF-8 reaches Python with surrogates (os.fsdecode),
# which SQLite cannot store. Such a byte is kept as NUL + two hex digits (NUL is in no real path),
# so the path is stored faithfully and comes back exactly as the file system gave it.
_SURROGATE = re.compile("[\udc80-\udcff]")
_ESCAPED = re.compile("\x00([0-9a-f]{2})")


def _to_db(value: object) -> object:
    if isinstance(value, str) and _SURROGATE.search(value):
        return _SURROGATE.sub(lambda m: f"\x00{ord(m.group(0)) - 0xDC00:02x}", value)
    return value


def _from_db(raw: bytes) -> str:
    text = raw.decode("utf-8")
    return _ESCAPED.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text) if "\x00" in text else text


def _params(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: _to_db(v) for k, v in params.items()}
    return tuple(_to_db(v) for v in params)


class _Connection(sqlite3.Connection):
    """Every statement's parameters pass through `_to_db`; every text read through `_from_db`."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _params(parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        return super().executemany(sql, (_params(p) for p in seq_of_parameters))


def chunk_id(sha256: str, seq: int) -> str:
    return f"{sha256[:32]}-{seq}"


def no_walls(groups: Sequence[str] | None) -> None:
    """This catalog has no matter walls (team mode's PostgreSQL has): asked for one, it refuses rather than
    read past it."""
    if groups is not None:
        raise UsageError(
            "this index has no matter walls (the laptop's catalog); a walled read needs team mode"
        )


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30, factory=_Connection
        )
        self._db.text_factory = _from_db
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._names: tuple[tuple[Any, ...], list[tuple[str, str, str]]] = ((), [])
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted text is overwritten, not left in free pages
        self._db.executescript(SCHEMA)
        self._migrate()
        self._db.execute(
            "INSERT OR IGNORE INTO workspaces(name, created_at) SELECT ?, ? UNION SELECT workspace, ? FROM folders",
            (DEFAULT_WORKSPACE, time.time(), time.time()),
        )

    def _migrate(self) -> None:
        """Bring an older catalog's schema up to date (new catalogs are created current)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(messages)")}
        if "record" not in columns:  # version 1
            self._db.execute("ALTER TABLE messages ADD COLUMN record TEXT")
        if "origin" not in {r[1] for r in self._db.execute("PRAGMA table_info(chats)")}:
            self._db.execute("ALTER TABLE chats ADD COLUMN origin TEXT NOT NULL DEFAULT ''")
        fts = self._db.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks_fts'").fetchone()
        if fts and "porter" not in fts[0]:  # keyword search stems words since schema 3: index them again
            self._db.executescript(
                "DROP TABLE chunks_fts; DROP TRIGGER chunks_ai; DROP TRIGGER chunks_ad;"
                + KEYWORD_INDEX
                + "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');"
            )
        if version > SCHEMA_VERSION:
            raise SealroomError(
                f"{self.path} was written by a newer Sealroom (catalog schema {version}); update Sealroom"
            )
        self._db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- meta -------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- workspaces and folders ------------------------------------------------------
    def workspaces(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM workspaces ORDER BY created_at, name")]

    def add_workspace(self, name: str) -> bool:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO workspaces(name, created_at) VALUES (?, ?)", (name, time.time())
            )
            return cur.rowcount > 0

    def remove_workspace(self, name: str) -> None:
        """Drop a workspace with its folders (their files leave the index) and its chats."""
        with self.transaction() as db:
            db.execute("DELETE FROM folders WHERE workspace = ?", (name,))
            db.execute("DELETE FROM chats WHERE workspace = ?", (name,))
            db.execute("DELETE FROM workspaces WHERE name = ?", (name,))

    def add_folder(self, path: str, workspace: str = DEFAULT_WORKSPACE) -> bool:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO workspaces(name, created_at) VALUES (?, ?)", (workspace, time.time())
            )
            cur = db.execute(
                "INSERT OR IGNORE INTO folders(workspace, path, added_at) VALUES (?, ?, ?)",
                (workspace, path, time.time()),
            )
            return cur.rowcount > 0

    def remove_folder(self, path: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM folders WHERE path = ?", (path,)).rowcount > 0

    def folders(self, workspace: str | None = None) -> list[tuple[int, str]]:
        sql = (
            "SELECT id, path FROM folders" + (" WHERE workspace = ?" if workspace else "") + " ORDER BY path"
        )
        return [(r["id"], r["path"]) for r in self.query(sql, (workspace,) if workspace else ())]

    def folder_workspaces(self) -> list[dict[str, str]]:
        """Every watched folder with its workspace (what folders.json mirrors)."""
        return [
            {"path": r["path"], "workspace": r["workspace"]}
            for r in self.query("SELECT path, workspace FROM folders")
        ]

    def readable(self) -> None:
        """Read the files table once: raises sqlite3.DatabaseError when the file is damaged."""
        self.query("SELECT count(*) FROM files")

    # --- files ------------------------------------------------------------------------
    def file(self, path: str) -> FileRow | None:
        rows = self.query("SELECT * FROM files WHERE path = ?", (path,))
        return _file_row(rows[0]) if rows else None

    def files(self, folder_id: int | None = None) -> list[FileRow]:
        if folder_id is None:
            rows = self.query("SELECT * FROM files ORDER BY path")
        else:
            rows = self.query("SELECT * FROM files WHERE folder_id = ? ORDER BY path", (folder_id,))
        return [_file_row(r) for r in rows]

    def files_under(self, folder: str) -> list[FileRow]:
        """Files inside `folder` (any depth), found by path prefix in SQL."""
        prefix = folder.rstrip(os.sep) + os.sep
        rows = self.query(
            "SELECT * FROM files WHERE substr(path, 1, ?) = ? ORDER BY path", (len(prefix), prefix)
        )
        return [_file_row(r) for r in rows]

    def upsert_file(
        self,
        folder_id: int,
        path: str,
        size: int,
        mtime_ns: int,
        sha256: str,
        status: str,
        reason: str | None = None,
        pages: int | None = None,
    ) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                """INSERT INTO files(folder_id, path, size, mtime_ns, sha256, status, reason, pages, queued_at,
                                     done_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET folder_id=excluded.folder_id, size=excluded.size,
                       mtime_ns=excluded.mtime_ns, sha256=excluded.sha256, status=excluded.status,
                       reason=excluded.reason, pages=excluded.pages, queued_at=excluded.queued_at,
                       done_at=excluded.done_at""",
                (
                    folder_id,
                    path,
                    size,
                    mtime_ns,
                    sha256,
                    status,
                    reason,
                    pages,
                    now,
                    None if status == "pending" else now,
                ),
            )

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path))

    def remove_file(self, path: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM files WHERE path = ?", (path,)).rowcount > 0

    def known_outcome(self, sha256: str) -> FileRow | None:
        """A finished file with this content, whose result a new copy can reuse."""
        rows = self.query(
            "SELECT * FROM files WHERE sha256 = ? AND status != 'pending' ORDER BY status = 'indexed' DESC LIMIT 1",
            (sha256,),
        )
        return _file_row(rows[0]) if rows else None

    def pending(self, limit: int = 8, exclude: Iterable[str] = (), last: Iterable[str] = ()) -> list[FileRow]:
        """Files to index, oldest first; those whose names end in one of `last` (image files, read by OCR
        at several seconds a page) after all others, so text documents are searchable first."""
        skip, slow = list(exclude), [f"*{suffix}" for suffix in last]
        marks = ",".join("?" * len(skip))
        sql = "SELECT * FROM files WHERE status = 'pending'"
        sql += f" AND sha256 NOT IN ({marks})" if skip else ""
        later = " OR ".join("lower(path) GLOB ?" for _ in slow) or "0 = 1"
        # files waiting for their OCR pass (a reason while pending) after the rest, images after text
        sql += f" ORDER BY reason IS NOT NULL, ({later}), queued_at, id LIMIT ?"
        return [_file_row(r) for r in self.query(sql, (*skip, *slow, limit))]

    def counts_by_folder(self) -> dict[str, dict[str, int]]:
        """Per watched folder: how many files are indexed, pending, failed and skipped."""
        rows = self.query(
            "SELECT folders.path AS folder, files.status AS status, COUNT(files.id) AS n FROM folders"
            " LEFT JOIN files ON files.folder_id = folders.id GROUP BY folders.path, files.status"
        )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            counts = out.setdefault(r["folder"], {})
            if r["status"]:
                counts[r["status"]] = r["n"]
        return out

    def not_indexed(self) -> list[FileRow]:
        """Files that failed or were skipped, with their reasons."""
        rows = self.query("SELECT * FROM files WHERE status IN ('failed', 'skipped') ORDER BY status, path")
        return [_file_row(r) for r in rows]

    def count_by_status(self) -> dict[str, int]:
        rows = self.query("SELECT status, COUNT(*) AS n FROM files GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def finish_content(
        self,
        sha256: str,
        status: str,
        reason: str | None,
        pages: int | None,
        chunks: Sequence[Chunk],
        embedded: bool = True,
    ) -> list[str]:
        """Record a parsed version: its chunks and the status of every file with this content, atomically.
        With `embedded` false its vectors are still to come (`unembedded`, until `mark_embedded`).

        Returns the paths that changed state (files edited since the parse keep their new state).
        """
        with self.transaction() as db:
            db.execute("DELETE FROM chunks WHERE sha256 = ?", (sha256,))
            db.executemany(
                "INSERT INTO chunks(id, sha256, seq, text, page, heading, start, end) VALUES (?,?,?,?,?,?,?,?)",
                [(c.id, c.sha256, c.seq, c.text, c.page, c.heading, c.start, c.end) for c in chunks],
            )
            if embedded or not chunks:
                db.execute("DELETE FROM unembedded WHERE sha256 = ?", (sha256,))
            else:
                db.execute("INSERT OR IGNORE INTO unembedded(sha256) VALUES (?)", (sha256,))
            paths = [
                r["path"]
                for r in db.execute(
                    "SELECT path FROM files WHERE sha256 = ? AND status = 'pending'", (sha256,)
                )
            ]
            db.execute(
                "UPDATE files SET status = ?, reason = ?, pages = ?, done_at = ? WHERE sha256 = ? AND status = 'pending'",
                (status, reason, pages, time.time(), sha256),
            )
            return paths

    def mark_embedded(self, sha256: str | None = None) -> None:
        """One content's vectors are all stored (None: every content's, after a rebuild)."""
        with self.transaction() as db:
            if sha256 is None:
                db.execute("DELETE FROM unembedded")
            else:
                db.execute("DELETE FROM unembedded WHERE sha256 = ?", (sha256,))

    def unembedded(self) -> list[str]:
        """Contents searchable by keyword whose vectors are still to be stored, oldest first."""
        return [r["sha256"] for r in self.query("SELECT sha256 FROM unembedded ORDER BY rowid")]

    def unembedded_chunk_ids(self) -> set[str]:
        return {
            r["id"]
            for r in self.query("SELECT id FROM chunks WHERE sha256 IN (SELECT sha256 FROM unembedded)")
        }

    def semantic_pending(self) -> tuple[int, int]:
        """(files, passages) searchable by keyword only until their vectors are stored."""
        files = self.query(
            "SELECT COUNT(*) AS n FROM files WHERE status = 'indexed' AND sha256 IN (SELECT sha256 FROM unembedded)"
        )[0]["n"]
        chunks = self.query(
            "SELECT COUNT(*) AS n FROM chunks WHERE sha256 IN (SELECT sha256 FROM unembedded)"
        )[0]["n"]
        return int(files), int(chunks)

    def wait_for_ocr(self, sha256: str, reason: str) -> None:
        """Files of this content go back to the queue, behind every file without that `reason`: their
        text layer held scanned pages, which are read by OCR once the text documents are indexed."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET status = 'pending', reason = ?, queued_at = ? WHERE sha256 = ?",
                (reason, time.time(), sha256),
            )

    def requeue_failed(self) -> int:
        """Queue the failed files again (after a fix, or once a file is readable)."""
        return self._requeue("status = 'failed'")

    def requeue_for_parser(self, version: str, reread: Sequence[str] = ()) -> int:
        """After a parser upgrade, the files it failed on or skipped are tried again (not those skipped
        for their size or for being special files, which no parser changes), and indexed files whose
        names end in one of `reread` ('.md') are read again (the new version reads them differently)."""
        if self.get_meta("parser_version") == version:
            return 0
        n = self._requeue(
            "status IN ('failed', 'skipped') AND sha256 NOT LIKE 'large:%' AND sha256 NOT LIKE 'special:%'"
        )
        if reread and self.get_meta("parser_version") is not None:  # a new catalog has nothing to read again
            endings = " OR ".join(
                f"lower(path) LIKE '%{s.lower()}'" for s in reread if s.isascii() and "'" not in s
            )
            n += self._requeue(f"status = 'indexed' AND ({endings})")
        self.set_meta("parser_version", version)
        return n

    def _requeue(self, where: str) -> int:
        with self.transaction() as db:
            return db.execute(
                f"UPDATE files SET status = 'pending', reason = NULL, queued_at = ? WHERE {where}",
                (time.time(),),
            ).rowcount

    # --- chunks -----------------------------------------------------------------------
    def chunk_count(self) -> int:
        return int(self.query("SELECT COUNT(*) AS n FROM chunks")[0]["n"])

    def chunks_by_id(self, ids: Sequence[str], *, groups: Sequence[str] | None = None) -> dict[str, Chunk]:
        no_walls(groups)
        out: dict[str, Chunk] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = self.query(f"SELECT * FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
            out.update((r["id"], _chunk(r)) for r in rows)
        return out

    def chunks_at(
        self, places: Iterable[tuple[str, int]], *, groups: Sequence[str] | None = None
    ) -> dict[tuple[str, int], Chunk]:
        """The chunks at these (sha256, seq) places, those that exist."""
        no_walls(groups)
        out: dict[tuple[str, int], Chunk] = {}
        for sha256, seq in set(places):
            for r in self.query("SELECT * FROM chunks WHERE sha256 = ? AND seq = ?", (sha256, seq)):
                out[(sha256, seq)] = _chunk(r)
        return out

    def chunks_of(self, sha256: str, *, groups: Sequence[str] | None = None) -> list[Chunk]:
        no_walls(groups)
        return [
            _chunk(r) for r in self.query("SELECT * FROM chunks WHERE sha256 = ? ORDER BY seq", (sha256,))
        ]

    def all_chunks(self, batch: int = 256) -> Iterator[list[Chunk]]:
        last = 0
        while True:
            rows = self.query("SELECT * FROM chunks WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, batch))
            if not rows:
                return
            last = rows[-1]["rowid"]
            yield [_chunk(r) for r in rows]

    def orphan_chunk_ids(self) -> list[str]:
        rows = self.query(
            "SELECT id FROM chunks WHERE sha256 NOT IN (SELECT sha256 FROM files WHERE status = 'indexed')"
        )
        return [r["id"] for r in rows]

    def delete_chunks(self, ids: Sequence[str]) -> None:
        """Delete chunks and leave none of their words behind (FTS5 segments, the write-ahead log)."""
        with self.transaction() as db:
            db.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in ids])
            db.execute("DELETE FROM unembedded WHERE sha256 NOT IN (SELECT sha256 FROM chunks)")
            # FTS5 keeps a deleted row's tokens in old segments until they are merged
            db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # old page versions leave the WAL file

    def keyword_search(
        self,
        match: str,
        limit: int,
        within: Sequence[str] | None = None,
        *,
        groups: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Chunk ids ranked by FTS5 bm25 (lower is better, so the score is negated); a heading's words count
        twice a passage's. `within`: only the chunks of these contents (sha256)."""
        no_walls(groups)
        only = f"AND c.sha256 IN ({','.join('?' * len(within))}) " if within else ""
        rows = self.query(
            "SELECT c.id, bm25(chunks_fts, 1.0, 2.0) AS rank FROM chunks_fts "
            "JOIN chunks c ON c.rowid = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? {only}ORDER BY rank LIMIT ?",
            (match, *(within or ()), limit),
        )
        return [(r["id"], -float(r["rank"])) for r in rows]

    def known_words(self, words: list[str], *, groups: Sequence[str] | None = None) -> set[str]:
        """The words that occur (as any form of the word) in some indexed passage."""
        no_walls(groups)
        out = set()
        for word in words:
            if re.fullmatch(r"\w+", word) and self.query(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", (f'"{word}"',)
            ):
                out.add(word)
        return out

    def document_names(self, *, groups: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
        """(sha256, path, first line of its text) of every indexed file: what names a document."""
        no_walls(groups)
        key = self.query(
            "SELECT COUNT(*) AS n, MAX(id) AS i, MAX(done_at) AS d FROM files WHERE status = 'indexed'"
        )
        stamp = tuple(key[0])
        if self._names[0] != stamp:
            rows = self.query(
                "SELECT f.sha256, f.path, (SELECT substr(c.text, 1, 160) FROM chunks c "
                "WHERE c.sha256 = f.sha256 AND c.seq = 0) AS head FROM files f WHERE f.status = 'indexed'"
            )
            first = [(r["sha256"], r["path"], (r["head"] or "").strip().split("\n", 1)[0]) for r in rows]
            self._names = (stamp, first)
        return self._names[1]

    def rare_matches(
        self, terms: Iterable[str], most: int, *, groups: Sequence[str] | None = None
    ) -> set[str]:
        """Chunk ids holding a term found in at most `most` chunks (an exact rare token: a code, a name)."""
        no_walls(groups)
        out: set[str] = set()
        for term in terms:
            rows = self.query(
                "SELECT c.id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ? LIMIT ?",
                (f'"{term}"', most + 1),
            )
            if len(rows) <= most:
                out.update(r["id"] for r in rows)
        return out

    def files_for_content(
        self, sha256s: Iterable[str], *, groups: Sequence[str] | None = None
    ) -> dict[str, list[FileRow]]:
        no_walls(groups)
        keys = list(set(sha256s))
        out: dict[str, list[FileRow]] = {k: [] for k in keys}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self.query(
                f"SELECT * FROM files WHERE status = 'indexed' AND sha256 IN ({','.join('?' * len(part))}) ORDER BY path",
                part,
            )
            for r in rows:
                out[r["sha256"]].append(_file_row(r))
        return out

    # --- chats ------------------------------------------------------------------------
    def chats(self, workspace: str = DEFAULT_WORKSPACE) -> list[tuple[int, str]]:
        """(id, title) of a workspace's chats, the newest first."""
        rows = self.query("SELECT id, title FROM chats WHERE workspace = ? ORDER BY id DESC", (workspace,))
        return [(r["id"], r["title"]) for r in rows]

    def chat_list(self, workspace: str = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
        """A workspace's chats, the most recently used first: id, title, created, last (the time of its
        last message), origin ('window', 'cli' or '') and questions (how many were asked)."""
        rows = self.query(
            "SELECT c.id, c.title, c.created_at, c.origin, max(m.created_at) AS last,"
            " sum(m.role = 'user') AS questions"
            " FROM chats c LEFT JOIN messages m ON m.chat_id = c.id WHERE c.workspace = ?"
            " GROUP BY c.id ORDER BY coalesce(max(m.created_at), c.created_at) DESC, c.id DESC",
            (workspace,),
        )
        return [
            {
                "id": r["id"],
                "title": r["title"],
                "created": r["created_at"],
                "last": r["last"] or r["created_at"],
                "origin": r["origin"],
                "questions": int(r["questions"] or 0),
            }
            for r in rows
        ]

    def rename_chat(self, chat_id: int, title: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))

    def delete_chat(self, chat_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    def chat_workspace(self, chat_id: int) -> str | None:
        rows = self.query("SELECT workspace FROM chats WHERE id = ?", (chat_id,))
        return rows[0]["workspace"] if rows else None

    def transcript(self, chat_id: int) -> list[tuple[str, str, list[dict[str, Any]], dict[str, Any] | None]]:
        """(role, text, citations, answer record or None) of every message of a chat, in order."""
        rows = self.query(
            "SELECT role, text, citations, record FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,)
        )
        return [
            (r["role"], r["text"], json.loads(r["citations"] or "[]"), json.loads(r["record"] or "null"))
            for r in rows
        ]

    def new_chat(self, title: str, workspace: str = DEFAULT_WORKSPACE) -> int:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO chats(workspace, title, created_at) VALUES (?, ?, ?)",
                (workspace, title, time.time()),
            )
            return int(cur.lastrowid or 0)

    def record_answer(
        self,
        chat_id: int | None,
        question: str,
        text: str,
        citations: list[dict[str, Any]],
        record: dict[str, Any],
        workspace: str = DEFAULT_WORKSPACE,
        origin: str = "",
    ) -> int:
        """Store a question and its answer in one transaction (a new chat when `chat_id` is None, marked
        with where it was asked: `origin`)."""
        now = time.time()
        with self.transaction() as db:
            if chat_id is None:
                cur = db.execute(
                    "INSERT INTO chats(workspace, title, created_at, origin) VALUES (?, ?, ?, ?)",
                    (workspace, " ".join(question.split())[:80], now, origin),
                )
                chat_id = int(cur.lastrowid or 0)
            db.execute(
                "INSERT INTO messages(chat_id, role, text, created_at) VALUES (?, 'user', ?, ?)",
                (chat_id, question, now),
            )
            db.execute(
                "INSERT INTO messages(chat_id, role, text, citations, record, created_at)"
                " VALUES (?, 'assistant', ?, ?, ?, ?)",
                (chat_id, text, json.dumps(citations), json.dumps(record), now),
            )
        return chat_id

    def last_answer_id(self, chat_id: int) -> int:
        rows = self.query(
            "SELECT max(id) AS id FROM messages WHERE chat_id = ? AND role = 'assistant'", (chat_id,)
        )
        return int(rows[0]["id"] or 0)

    def answers(self, chat_id: int | None = None, answer_id: int | None = None) -> list[dict[str, Any]]:
        """Stored answers with their chat: id, chat_id, title, workspace, text, citations, record."""
        where, params = ("m.id = ?", (answer_id,)) if answer_id is not None else ("m.chat_id = ?", (chat_id,))
        rows = self.query(
            "SELECT m.id, m.chat_id, m.text, m.citations, m.record, m.created_at, c.title, c.workspace"
            f" FROM messages m JOIN chats c ON c.id = m.chat_id WHERE {where} AND m.role = 'assistant'"
            " ORDER BY m.id",
            params,
        )
        out = []
        for r in rows:
            record = json.loads(r["record"] or "null") or {}
            if not record:  # answers stored before records existed: what was shown
                question = self.query(
                    "SELECT text FROM messages WHERE chat_id = ? AND id < ? AND role = 'user'"
                    " ORDER BY id DESC LIMIT 1",
                    (r["chat_id"], r["id"]),
                )
                record = {
                    "question": question[0]["text"] if question else "",
                    "answer": r["text"],
                    "citations": json.loads(r["citations"] or "[]"),
                    "created_at": r["created_at"],
                }
            out.append(
                {
                    "id": r["id"],
                    "chat_id": r["chat_id"],
                    "title": r["title"],
                    "workspace": r["workspace"],
                    "record": {**record, "chat_id": r["chat_id"]},
                }
            )
        return out

    def messages(self, chat_id: int) -> list[tuple[str, str]]:
        rows = self.query("SELECT role, text FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,))
        return [(r["role"], r["text"]) for r in rows]

    def chat_exists(self, chat_id: int) -> bool:
        return bool(self.query("SELECT 1 FROM chats WHERE id = ?", (chat_id,)))


def _file_row(r: sqlite3.Row) -> FileRow:
    return FileRow(
        r["id"],
        r["folder_id"],
        r["path"],
        r["size"],
        r["mtime_ns"],
        r["sha256"],
        r["status"],
        r["reason"],
        r["pages"],
    )


def _chunk(r: sqlite3.Row) -> Chunk:
    return Chunk(r["id"], r["sha256"], r["seq"], r["text"], r["page"], r["heading"], r["start"], r["end"])
