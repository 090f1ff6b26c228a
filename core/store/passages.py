"""A cited passage read back from the catalog with the rest of its section around it: what the window's
preview shows, highlighted, when a citation is opened."""

from __future__ import annotations

from sealroom.core.protocols import Passage
from sealroom.core.runtime.errors import UsageError
from sealroom.core.store.catalog import Catalog, Chunk


def passage(catalog: Catalog, sha256: str, seq: int, start: int, end: int) -> Passage:
    """The passage [start, end) that begins in chunk `seq`, with the rest of its section around it."""
    chunks = catalog.chunks_of(sha256)
    first = next((c for c in chunks if c.seq == seq), None)
    if first is None:
        raise UsageError(
            "source deleted or changed: this passage is no longer in the index (the answer keeps the "
            "quote as it was shown); ask again for the current text"
        )
    # offsets count from the start of a section: the run of chunks with the same page and heading
    i = j = chunks.index(first)
    while i > 0 and (chunks[i - 1].page, chunks[i - 1].heading) == (first.page, first.heading):
        i -= 1
    while j + 1 < len(chunks) and (chunks[j + 1].page, chunks[j + 1].heading) == (first.page, first.heading):
        j += 1
    section = chunks[i : j + 1]
    return Passage(
        _span(section, section[0].start, start),
        _span(section, start, end),
        _span(section, end, section[-1].end),
        first.page,
    )


def _span(chunks: list[Chunk], start: int, end: int) -> str:
    """Document text [start, end) pieced together from overlapping chunks (offsets are per version)."""
    out: list[str] = []
    pos = start
    for c in chunks:
        if c.end <= pos or c.start >= end:
            continue
        if out and c.start > pos:
            out.append(" ")
        out.append(c.text[max(0, pos - c.start) : min(len(c.text), end - c.start)])
        pos = min(c.end, end)
    return "".join(out)
