"""Hybrid retrieval: Chroma vectors and SQLite FTS5 (bm25), fused by reciprocal rank.

Hits are then filtered by folder and file type, neighbouring chunks of one page are
merged, and duplicates (the same content in two files) are dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Sequence
from typing import TypeGuard

from sealroom.core.answer.text import STOPWORDS, WORD
from sealroom.core.protocols import Chunk, Embedder, FileRow, Hit, PassageReads, VectorIndex
from sealroom.core.runtime import logs
from sealroom.core.runtime.errors import ServerUnreachable, UsageError
from sealroom.core.runtime.paths import is_within

RRF_K = 60
#: A query word found in at most this many passages is an exact rare token (a code, a name, a number):
#: passages holding it rank as if first in one more list, so junk that merely looks similar cannot bury them.
RARE = 5


def query_terms(question: str) -> list[str]:
    """The question's content words, each once, at most 16."""
    terms = [w for w in WORD.findall(question.lower()) if w not in STOPWORDS and len(w) > 1]
    return list(dict.fromkeys(terms))[:16]


#: British and American spellings of one word: the keyword index stems words but does not respell them.
SPELLINGS = [
    (re.compile(r"(?<=\w{3})is(e|es|ed|ing|ation|ations)$"), r"iz\1"),
    (re.compile(r"(?<=\w{3})iz(e|es|ed|ing|ation|ations)$"), r"is\1"),
    (re.compile(r"(?<=\w{2})ys(e|es|ed|ing)$"), r"yz\1"),
    (re.compile(r"(?<=\w{2})yz(e|es|ed|ing)$"), r"ys\1"),
    (re.compile(r"(?<=\w{2})our(s|ed|ing|able)?$"), r"or\1"),
    (re.compile(r"(?<=\w{3})tre(s)?$"), r"ter\1"),
    (re.compile(r"(?<=\w{3})ter(s)?$"), r"tre\1"),
    (re.compile(r"(?<=\w{2})ogue(s)?$"), r"og\1"),
    (re.compile(r"(?<=\w{2})ence$"), "ense"),
    (re.compile(r"(?<=\w{2})ense$"), "ence"),
    (re.compile(r"(?<=\w{2})lled$"), "led"),
    (re.compile(r"(?<=\w{2})lling$"), "ling"),
]


def spellings(word: str) -> list[str]:
    """The word's other spellings ('licence' -> 'license', 'colour' -> 'color', 'normalise' -> 'normalize')."""
    out = []
    for pattern, repl in SPELLINGS:
        other = pattern.sub(repl, word)
        if other != word:
            out.append(other)
    return out


def search_terms(question: str) -> list[str]:
    """The question's content words and their other spellings."""
    unique = query_terms(question)
    return unique + [v for t in unique for v in spellings(t) if v not in unique]


def keyword_query(question: str) -> str | None:
    """An FTS5 query: the question's content words or their other spellings, any of them."""
    terms = search_terms(question)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


NAME_PART = re.compile(r"[a-z0-9]+(?:\.[0-9]+)*")
#: File-name words that name a format or a part, not a document
NAME_NOISE = frozenset(["txt", "pdf", "html", "htm", "docx", "doc", "md", "eml", "csv", "library", "the"])


@functools.lru_cache(maxsize=65536)  # every question reads every document's name: each name is split once
def name_terms(text: str) -> frozenset[str]:
    """Words and version numbers of a file name or title: 'lgpl-2.1.docx' -> {lgpl, 2.1, 2, 1}."""
    out: set[str] = set()
    for part in NAME_PART.findall(text.lower()):
        out.add(part)
        out.update(part.split("."))
    return frozenset(t for t in out if t and t not in STOPWORDS and t not in NAME_NOISE)


def known_words(catalog: PassageReads, words: list[str], groups: Sequence[str] | None = None) -> set[str]:
    """The words some indexed passage holds, or that name an indexed document ('lgpl' for lgpl-3.txt);
    `groups`: of the passages and documents these groups may read (team mode; None: no wall)."""
    documents = catalog.document_names(groups=groups)
    names = set().union(*(name_terms(os.path.basename(p)) | name_terms(t) for _, p, t in documents))
    return catalog.known_words([w for w in words if w not in names], groups=groups) | (set(words) & names)


def _title_like(line: str) -> bool:
    """A first line that reads as a title ('GNU LESSER GENERAL PUBLIC LICENSE'), not a header field or prose."""
    words = re.findall(r"[A-Za-z][\w'-]*", line)
    if not words or len(line) > 80 or re.match(r"\s*[A-Za-z-]{1,30}:", line):
        return False
    return sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def named_documents(question: str, documents: list[tuple[str, str, str]], most: int = 3) -> list[str]:
    """The contents (sha256) whose file name or title the question names with a version or a year ('version 3
    of the GPL' -> gpl-3.txt, 'the 2021 lease' -> lease-2021.pdf): two of its words, one a number, and each
    word counts by how few documents share it; the best, and any close to it. Plain words that happen to be
    in a file name ('document', 'test') name nothing."""
    asked = name_terms(question)
    if not documents or not any(t[0].isdigit() for t in asked):
        return []  # nothing named: a name is two of the question's words, one of them a number
    names: dict[str, set[str]] = {}
    for sha, path, title in documents:
        parts = [name_terms(os.path.basename(path))] + ([name_terms(title)] if _title_like(title) else [])
        named = [p for p in parts if len(p & asked) >= 2 and any(t[0].isdigit() for t in p & asked)]
        names[sha] = set().union(*parts) if named else set()
    share: dict[str, int] = {}
    for terms in names.values():
        for t in terms & asked:
            share[t] = share.get(t, 0) + 1
    n = len(documents)
    scores = {sha: sum(math.log(1 + n / share[t]) for t in terms & asked) for sha, terms in names.items()}
    best = max(scores.values(), default=0.0)
    # a word shared by most documents names none of them; at least one rarer word must match
    if best < math.log(1 + n / max(1, n // 4)) or n < 2:
        return []
    ranked = sorted((sha for sha in scores if scores[sha] >= 0.9 * best), key=lambda sha: -scores[sha])
    return ranked[:most] if len(ranked) <= most else []


class Retriever:
    def __init__(
        self,
        catalog: PassageReads,
        store: VectorIndex,
        embedder: Embedder,
        groups: Sequence[str] | None = None,
    ) -> None:
        """`groups`: the reader's groups, for every search and read (team mode; None: no wall)."""
        self.catalog = catalog
        self.store = store
        self.embedder = embedder
        self.groups = list(groups) if groups is not None else None
        # what the last search could not do, for the user ("" when nothing): a vector server down
        self.notice = ""

    def search(
        self,
        query: str,
        k: int = 6,
        folders: list[str] | None = None,
        types: list[str] | None = None,
        context: str = "",
        since: float | None = None,
        groups: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Passages for `query` from files under `folders` (None: everywhere; []: nowhere) of `types`,
        modified `since` (a time in seconds; None: any); `context` (a follow-up's earlier question) joins
        the search, but a document it named is not taken as named by `query` too. `groups` (team mode: the
        reader's groups; None: no wall) is handed to every read of the vectors and the passages, so what
        lies behind a matter wall is never retrieved, ranked against or counted."""
        if not query.strip():
            raise UsageError("the search is empty")
        if not 1 <= k <= 100:
            raise UsageError(f"-k must be between 1 and 100, not {k}")
        self.notice = ""
        if folders == []:
            return []
        groups = self.groups if groups is None else groups
        with logs.stage("search", k=k) as info:
            hits = self._search(query, k, folders, types, context, since, groups)
            info["hits"] = len(hits)
        return hits

    def known_words(self, words: list[str]) -> set[str]:
        return known_words(self.catalog, words, self.groups)

    def _search(
        self,
        query: str,
        k: int,
        folders: list[str] | None,
        types: list[str] | None,
        context: str,
        since: float | None = None,
        groups: Sequence[str] | None = None,
    ) -> list[Hit]:
        asked, query = query, f"{context} {query}".strip()
        pool = max(k * 5, 30)
        cat = self.catalog
        keyword_search = functools.partial(cat.keyword_search, groups=groups)
        try:
            dense = self.store.query(self.embedder.embed([query])[0], pool, groups=groups)
        except ServerUnreachable as exc:  # team mode's vector server is down: keyword search still answers
            dense, self.notice = [], f"{exc} (these passages were found by keyword only)"
            logs.problem("vector search unavailable; keyword only", detail=f"{exc.host}:{exc.port}")
        match = keyword_query(query)
        sparse = keyword_search(match, pool) if match else []
        rankings = [dense, sparse]
        named = named_documents(asked, cat.document_names(groups=groups)) if match else []
        if named:  # the question names a document or a version: its passages get their own ranking
            rankings.append(keyword_search(match or "", pool, within=named))
        fused: dict[str, float] = {}
        for ranking in rankings:
            for rank, (chunk_id, _) in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        rare = cat.rare_matches(search_terms(query), RARE, groups=groups) if match else set()
        for chunk_id in rare:
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + 1)
        similarity = dict(dense)
        keyword = {chunk_id for chunk_id, _ in sparse}
        chunks = cat.chunks_by_id(list(fused), groups=groups)
        owners = cat.files_for_content((c.sha256 for c in chunks.values()), groups=groups)
        hits: list[Hit] = []
        seen_text: set[str] = set()
        for chunk_id in sorted(fused, key=fused.__getitem__, reverse=True):
            chunk = chunks.get(chunk_id)
            if chunk is None:  # a vector whose chunk is gone (garbage not yet collected)
                continue
            owner = first_matching(owners.get(chunk.sha256, []), folders, types, since)
            if owner is None or chunk.text in seen_text:
                continue
            seen_text.add(chunk.text)
            hits.append(
                Hit.of_chunk(
                    chunk, owner.path, fused[chunk_id], similarity.get(chunk_id), chunk_id in keyword
                )
            )
        return complete_edges(merge_neighbours(hits)[:k], self.catalog, groups)


def first_matching(
    rows: list[FileRow], folders: list[str] | None, types: list[str] | None, since: float | None = None
) -> FileRow | None:
    """The first of a content's files under one of `folders` (None or []: any), of one of `types`, and
    modified `since` (seconds since the epoch; None: any time)."""
    roots = [os.path.abspath(f) for f in folders or []]
    for row in rows:
        if since is not None and row.mtime_ns < since * 1e9:
            continue
        if roots and not any(is_within(row.path, r) for r in roots):
            continue
        if types and os.path.splitext(row.path)[1].lower().lstrip(".") not in types:
            continue
        return row
    return None


def _same_section(first: Hit, second: Hit) -> bool:
    """Whether `second` (the next chunk) continues `first`'s text: offsets restart at 0 in each section
    (an HTML heading's, a text file's), so on a page-less document the next chunk may start a new one."""
    return first.heading == second.heading and first.start < second.start <= first.end + 1


def merge_neighbours(hits: list[Hit]) -> list[Hit]:
    """Join hits that are consecutive chunks of the same page into one passage."""
    merged: list[Hit] = []
    for hit in hits:
        for i, other in enumerate(merged):
            if other.sha256 != hit.sha256 or other.page != hit.page:
                continue
            if hit.seq == other.end_seq + 1:
                first, second = other, hit
            elif hit.end_seq + 1 == other.seq:
                first, second = hit, other
            else:
                continue
            if not _same_section(first, second):
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
                second.end_seq,
            )
            break
        else:
            merged.append(hit)
    return merged


#: A passage that starts or ends mid-sentence takes at most this much of its neighbour chunk, to the
#: sentence's start or end: a quote is never cut where a chunk happens to end.
EDGE = 400
SENTENCE_EDGE = re.compile(r"[.!?:;](?=\s)|\n\s*\n")


def complete_edges(hits: list[Hit], catalog: PassageReads, groups: Sequence[str] | None = None) -> list[Hit]:
    """Each passage widened to whole sentences, from the chunks before and after it in its section (those
    `groups` may read; None: no wall)."""
    wanted = [(h.sha256, h.seq - 1) for h in hits] + [(h.sha256, h.end_seq + 1) for h in hits]
    near: dict[tuple[str, int], Chunk] = catalog.chunks_at(wanted, groups=groups)
    out = []
    for hit in hits:
        text, start, end = hit.text, hit.start, hit.end
        before = near.get((hit.sha256, hit.seq - 1))
        if _continues(before, hit) and before.start < start <= before.end and not _starts_sentence(text):
            lead = before.text[: start - before.start]
            cuts = [m.end() for m in SENTENCE_EDGE.finditer(lead, max(0, len(lead) - EDGE))]
            if cuts:
                piece = lead[cuts[-1] :].lstrip()
                text, start = piece + text, start - len(piece)
        after = near.get((hit.sha256, hit.end_seq + 1))
        if _continues(after, hit) and after.start <= end < after.end and not _ends_sentence(text):
            tail = after.text[end - after.start :]
            found = SENTENCE_EDGE.search(tail, 0, EDGE)
            if found is not None:
                text, end = text + tail[: found.end()], end + found.end()
        out.append(dataclasses.replace(hit, text=text, start=start, end=end))
    return out


def _continues(chunk: Chunk | None, hit: Hit) -> TypeGuard[Chunk]:
    """Whether a neighbouring chunk is in the hit's section (same page and heading)."""
    return chunk is not None and chunk.page == hit.page and chunk.heading == hit.heading


def _starts_sentence(text: str) -> bool:
    return text[:1].isupper() or text[:1].isdigit() or not text[:1].isalpha()


def _ends_sentence(text: str) -> bool:
    return text.rstrip()[-1:] in ".!?:;"
