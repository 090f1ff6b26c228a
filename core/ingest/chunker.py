"""Token-aware, overlapping chunks that keep page, heading and character offsets.

Sizes are counted in the embedding model's own tokens, so no chunk is silently
truncated by the embedder. A chunk never spans two sections (pages), so every
chunk has one page to cite. Offsets are character positions in the document's text: its section's
text moved by the section's `offset` (a text file's sections are slices of the file: offsets are the
file's; other sections start at 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from sealroom.core.ingest.parsers import Section
from sealroom.core.store.catalog import Chunk, chunk_id

#: Character spans of the tokens of a text, special tokens excluded.
TokenSpans = Callable[[str], list[tuple[int, int]]]

BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


def _cut(text: str, start: int, end: int) -> int:
    """Move `end` back to a natural break in the last third of [start, end)."""
    floor = start + (end - start) * 2 // 3
    for mark in BREAKS:
        at = text.rfind(mark, floor, end)
        if at > start:
            return at + len(mark)
    return end


def split_section(
    text: str, spans: Sequence[tuple[int, int]], size: int, overlap: int
) -> list[tuple[int, int]]:
    """Character ranges of the chunks of one text."""
    if not spans:
        return []
    if len(spans) <= size:
        return [(spans[0][0], spans[-1][1])]
    ranges: list[tuple[int, int]] = []
    i = 0
    n = len(spans)
    while i < n:
        j = min(i + size, n)
        begin = spans[i][0]
        end = spans[j - 1][1] if j == n else _cut(text, begin, spans[j][0])
        ranges.append((begin, end))
        if j == n:
            break
        # the first token at or past the cut, then step back by the overlap
        k = i + 1
        while k < n and spans[k][0] < end:
            k += 1
        i = max(i + 1, k - overlap)
    return ranges


#: A section longer than this is tokenized a window at a time (cut at a line or word break), so a
#: 5-million-character one-line file does not hold a million token spans at once.
WINDOW = 60_000


def windows(text: str, size: int = WINDOW) -> Iterator[int]:
    """Start offsets of consecutive windows of `text`, each cut at a natural break."""
    start = 0
    while start < len(text):
        yield start
        end = start + size
        if end >= len(text):
            return
        start = _cut(text, start, end)


def chunk_sections(
    sections: Sequence[Section],
    sha256: str,
    token_spans: TokenSpans,
    size: int = 200,
    overlap: int = 40,
    limit: int | None = None,
) -> list[Chunk]:
    """The chunks of a document, at most `limit` of them (the rest is never tokenized)."""
    chunks: list[Chunk] = []
    seen: set[str] = set()  # the same text twice in one file (repeated parts, boilerplate) is kept once
    for section in sections:
        # NUL is no text; it is also the catalog's escape for undecodable file-name bytes ("\x00dc"
        # would come back as a surrogate). A space keeps every offset where it was.
        text = section.text.replace("\x00", " ")
        starts = list(windows(text))
        for w, offset in enumerate(starts):
            piece = text[offset : starts[w + 1]] if w + 1 < len(starts) else text[offset:]
            for begin, end in split_section(piece, token_spans(piece), size, overlap):
                raw = piece[begin:end]
                lead = len(raw) - len(raw.lstrip())
                body = raw.strip()
                if not body or body in seen:
                    continue
                seen.add(body)
                seq = len(chunks)
                at = section.offset + offset + begin + lead
                chunks.append(
                    Chunk(
                        chunk_id(sha256, seq),
                        sha256,
                        seq,
                        body,
                        section.page,
                        section.heading,
                        at,
                        at + len(body),
                    )
                )
                if limit is not None and len(chunks) >= limit:
                    return chunks
    return chunks
