"""The indexer's last step: what the indexer's own catalog holds, published into the servers readers use.

The service indexes the shared drives with the laptop's ingest code unchanged (`Engine.index`: the parser
pool, budgets, statuses, the durable queue in its own SQLite catalog, vectors on its disk). `publish` then
brings PostgreSQL and the Chroma server to match it, file by file:

- a finished content's passages go to PostgreSQL and its vectors to Chroma, each vector carrying the groups
  of every folder holding that content (the union: a document copied into two matters is readable from
  both); vectors first, then the passages and the files in one transaction, so a reader never finds a file
  whose passages are not all there;
- a file failed or skipped is published with its reason (nothing in a watched folder is invisible, on the
  service's health either);
- a file gone, or whose folder left the configuration, is removed with the passages and vectors no file
  holds any more;
- a folder whose groups changed has its vectors' readers rewritten (metadata only).

Every step is an upsert by path or chunk id, and what is done is read back from PostgreSQL itself, so a
publish killed at any point is finished by the next one with nothing lost or duplicated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sealroom.core.store.catalog import Catalog
from sealroom.core.store.postgres import PostgresPassages
from sealroom.core.store.remote_vectors import ChromaServerIndex
from sealroom.core.store.vectorstore import VectorStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS published (
    sha256 TEXT PRIMARY KEY,
    groups TEXT[] NOT NULL
);
"""


@dataclass
class Published:
    contents: int = 0  # contents whose passages and vectors were written
    passages: int = 0
    files: int = 0  # file rows written (new, changed, failed or skipped)
    removed: int = 0  # files removed
    regrouped: int = 0  # contents whose readers changed
    missing_vectors: list[str] = field(default_factory=list)  # contents held back: vectors not yet made

    def to_dict(self) -> dict[str, object]:
        return {
            "contents": self.contents,
            "passages": self.passages,
            "files": self.files,
            "removed": self.removed,
            "regrouped": self.regrouped,
            "held_back": len(self.missing_vectors),
        }


def _readers(groups: list[list[str]]) -> list[str]:
    return sorted({g for gs in groups for g in gs})


def publish(
    catalog: Catalog,
    store: VectorStore,
    pg: PostgresPassages,
    chroma: ChromaServerIndex,
    groups_of_folder: dict[str, list[str]],
    progress: Callable[[int, int], None] | None = None,
) -> Published:
    """Make PostgreSQL and Chroma hold what `catalog` and `store` hold, with each folder's readers (never
    while a backup copies them: see `PostgresPassages.publishing`)."""
    with pg.publishing():
        return _publish(catalog, store, pg, chroma, groups_of_folder, progress)


def _publish(
    catalog: Catalog,
    store: VectorStore,
    pg: PostgresPassages,
    chroma: ChromaServerIndex,
    groups_of_folder: dict[str, list[str]],
    progress: Callable[[int, int], None] | None,
) -> Published:
    pg.query(SCHEMA)
    done = Published()
    folders = dict(catalog.folders())
    wanted = {}  # path → (file, folder, groups)
    waiting = set()  # being read again: readers keep the version published until the new one is done
    for f in catalog.files():
        folder = folders.get(f.folder_id, "")
        if folder not in groups_of_folder:
            continue
        if f.status in ("indexed", "failed", "skipped"):
            wanted[f.path] = (f, folder, groups_of_folder[folder])
        else:
            waiting.add(f.path)
    have = {
        r[0]: (r[1], r[2], list(r[3])) for r in pg.query("SELECT path, sha256, status, groups FROM files")
    }
    published = {r[0]: list(r[1]) for r in pg.query("SELECT sha256, groups FROM published")}

    # files gone (or their folder no longer configured): removed first, so their readers leave too
    for path in sorted(set(have) - set(wanted) - waiting):
        pg.remove_file(path)
        done.removed += 1

    readers: dict[str, list[list[str]]] = {}
    for f, _, groups in wanted.values():
        if f.status == "indexed":
            readers.setdefault(f.sha256, []).append(groups)
    contents = sorted(readers)
    for i, sha in enumerate(contents):
        groups = _readers(readers[sha])
        holders = [(f, folder, g) for f, folder, g in wanted.values() if f.sha256 == sha]
        if sha not in published:
            chunks = catalog.chunks_of(sha)
            vectors = store.vectors([c.id for c in chunks])
            if len(vectors) < len(chunks):  # still being embedded: published by a later run
                done.missing_vectors.append(sha)
                continue
            if chunks:
                ids = [c.id for c in chunks]
                chroma.upsert(
                    ids,
                    np.stack([vectors[c][0] for c in ids]),
                    [sha] * len(ids),
                    [vectors[c][1] for c in ids],
                    groups=[groups] * len(ids),
                )
            for f, folder, g in holders:
                pg.upsert_file(f.path, sha, "pending", folder, f.mtime_ns, f.size, g, folder_id=f.folder_id)
            first = holders[0][0]
            pg.finish_content(sha, "indexed", first.reason, first.pages, chunks)
            pg.query(
                "INSERT INTO published(sha256, groups) VALUES (%s, %s)"
                " ON CONFLICT(sha256) DO UPDATE SET groups = excluded.groups",
                (sha, groups),
            )
            done.contents += 1
            done.passages += len(chunks)
            done.files += len(holders)
        else:
            for f, folder, g in holders:
                if have.get(f.path) != (sha, "indexed", g):
                    pg.upsert_file(
                        f.path, sha, "indexed", folder, f.mtime_ns, f.size, g, folder_id=f.folder_id
                    )
                    done.files += 1
            if published[sha] != groups:
                ids = [r[0] for r in pg.query("SELECT id FROM chunks WHERE sha256 = %s", (sha,))]
                chroma.regroup(ids, groups)
                pg.query("UPDATE published SET groups = %s WHERE sha256 = %s", (groups, sha))
                done.regrouped += 1
        if progress:
            progress(i + 1, len(contents))

    for path, (f, folder, g) in sorted(wanted.items()):
        if f.status != "indexed" and have.get(path) != (f.sha256, f.status, g):
            pg.upsert_file(
                path, f.sha256, f.status, folder, f.mtime_ns, f.size, g, f.folder_id, f.reason, f.pages
            )
            done.files += 1

    # passages and vectors no indexed file holds any more (forgotten as published first: a run killed in
    # between deletes the rest next time, and a content that comes back is published whole again)
    pg.query(
        "DELETE FROM published p WHERE NOT EXISTS"
        " (SELECT 1 FROM files f WHERE f.sha256 = p.sha256 AND f.status = 'indexed')"
    )
    orphans = pg.orphan_chunk_ids()
    if orphans:
        chroma.delete(orphans)
        pg.delete_chunks(orphans)
    if done.contents or done.removed:
        pg.query("ANALYZE chunks")
    return done
