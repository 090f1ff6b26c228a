"""Hybrid retrieval: Chroma vectors and SQLite FTS5 (bm25), fused by reciprocal rank.

Hits are then filtered by folder and file type, neighbouring chunks of one page are
merged, and duplicates (the same content in two files) are dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .catalog import Catalog, FileRow
from .protocols import Embedder
from .text import STOPWORDS, WORD
from .vectorstore import VectorStore

RRF_K = 60
#: A query word found in at most this many passages is an exact rare token (a code, a name, a number):
#: passages holding it rank as if first in one more list, so junk that merely looks similar cannot bury them.
RARE = 5


@dataclass
class Hit:
    chunk_id: str
    path: str
    page: int | None
    heading: str | None
    text: str
    score: float
    similarity: float | None
    keyword: bool
    start: int
    end: int
    sha256: str
    seq: int


def query_terms(question: str) -> list[str]:
    """The question's content words, each once, at most 16."""
    terms = [w for w in WORD.findall(question.lower()) if w not in STOPWORDS and len(w) > 1]
    return list(dict.fromkeys(terms))[:16]


def keyword_query(question: str) -> str | None:
    """An FTS5 query: the question's content words, any of them."""
    unique = query_terms(question)
    return " OR ".join(f'"{t}"' for t in unique) if unique else None


class Retriever:
    def __init__(self, catalog: Catalog, store: VectorStore, embedder: Embedder) -> None:
        self.catalog = catalog
        self.store = store
        self.embedder = embedder

    def search(
        self, query: str, k: int = 6, folders: list[str] | None = None, types: list[str] | None = None
    ) -> list[Hit]:
        pool = max(k * 5, 30)
        dense = self.store.query(self.embedder.embed([query])[0], pool)
        match = keyword_query(query)
        sparse = self.catalog.keyword_search(match, pool) if match else []
        fused: dict[str, float] = {}
        for ranking in (dense, sparse):
            for rank, (chunk_id, _) in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        rare = self.catalog.rare_matches(query_terms(query), RARE) if match else set()
        for chunk_id in rare:
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + 1)
        similarity = dict(dense)
        keyword = {chunk_id for chunk_id, _ in sparse}
        chunks = self.catalog.chunks_by_id(list(fused))
        owners = self.catalog.files_for_content(c.sha256 for c in chunks.values())
        hits: list[Hit] = []
        seen_text: set[str] = set()
        for chunk_id in sorted(fused, key=fused.__getitem__, reverse=True):
            chunk = chunks.get(chunk_id)
            if chunk is None:  # a vector whose chunk is gone (garbage not yet collected)
                continue
            owner = _first_matching(owners.get(chunk.sha256, []), folders, types)
            if owner is None or chunk.text in seen_text:
                continue
            seen_text.add(chunk.text)
            hits.append(
                Hit(
                    chunk.id,
                    owner.path,
                    chunk.page,
                    chunk.heading,
                    chunk.text,
                    fused[chunk_id],
                    similarity.get(chunk_id),
                    chunk_id in keyword,
                    chunk.start,
                    chunk.end,
                    chunk.sha256,
                    chunk.seq,
                )
            )
        return merge_neighbours(hits)[:k]


def _first_matching(
    rows: list[FileRow], folders: list[str] | None, types: list[str] | None
) -> FileRow | None:
    prefixes = tuple(os.path.abspath(f).rstrip(os.sep) + os.sep for f in folders) if folders else ()
    for row in rows:
        if prefixes and not row.path.startswith(prefixes):
            continue
        if types and os.path.splitext(row.path)[1].lower().lstrip(".") not in types:
            continue
        return row
    return None


def merge_neighbours(hits: list[Hit]) -> list[Hit]:
    """Join hits that are consecutive chunks of the same page into one passage."""
    merged: list[Hit] = []
    for hit in hits:
        for i, other in enumerate(merged):
            if other.sha256 != hit.sha256 or other.page != hit.page or abs(other.seq - hit.seq) != 1:
                continue
            first, second = (other, hit) if other.seq < hit.seq else (hit, other)
            if second.start > first.end + 1:
                continue
            text = first.text + second.text[max(0, first.end - second.start) :]
            merged[i] = Hit(
                other.chunk_id,
                other.path,
                other.page,
                other.heading,
                text,
                max(other.score, hit.score),
                max(other.similarity or 0, hit.similarity or 0) or None,
                other.keyword or hit.keyword,
                first.start,
                second.end,
                other.sha256,
                first.seq,
            )
            break
        else:
            merged.append(hit)
    return merged
