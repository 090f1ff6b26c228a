"""A cited passage read back from the catalog with the rest of its section around it: what the window's
preview shows, highlighted, when a citation is opened, with the lines of the file it spans when the file
is a text file."""

from __future__ import annotations

import os
from collections.abc import Sequence

from sealroom.core.protocols import Chunk, Passage, PassageReads
from sealroom.core.runtime.errors import UsageError


def passage(
    catalog: PassageReads, sha256: str, seq: int, start: int, end: int, groups: Sequence[str] | None = None
) -> Passage:
    """The passage [start, end) that begins in chunk `seq`, with the rest of its section around it;
    `groups` (team mode: the reader's): read only from what they may read, as every read behind a wall."""
    chunks = catalog.chunks_of(sha256, groups=groups)
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
        _lines(catalog, first, start, end, groups) if first.page is None else None,
    )


#: A text file larger than this is not read again to number a citation's lines
MAX_LINED_BYTES = 64 << 20


def _lines(
    catalog: PassageReads, chunk: Chunk, start: int, end: int, groups: Sequence[str] | None
) -> tuple[int, int] | None:
    """The lines (first, last, from 1) that [start, end) spans in the file `chunk` is from, when the file
    on disk holds `chunk`'s text at its offsets: a text file (its chunks' offsets are the file's), unchanged
    since it was indexed. None for anything else (a PDF, an HTML page, a file changed or gone)."""
    for row in catalog.files_for_content([chunk.sha256], groups=groups).get(chunk.sha256, []):
        text = _file_text(row.path, chunk)
        if text is not None:
            last = max(start, end - 1)
            return text.count("\n", 0, start) + 1, text.count("\n", 0, last) + 1
    return None


def _file_text(path: str, chunk: Chunk) -> str | None:
    """The file's text decoded as the parser decodes a text file (core/ingest/parsers.py read_text), when
    it holds `chunk` where the chunk says."""
    try:
        if os.path.getsize(path) > MAX_LINED_BYTES:
            return None
        with open(path, "rb") as file:
            raw = file.read()
    except OSError:
        return None
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # binary: a PDF, an Office file, an image
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = [("utf-16", "replace")]
    else:
        candidates = [
            ("utf-8-sig", "strict"),
            ("cp1252", "strict"),
            ("latin-1", "strict"),
            ("utf-8-sig", "replace"),
        ]
    for encoding, errors in candidates:
        try:
            text = raw.decode(encoding, errors)
        except UnicodeDecodeError:
            continue
        if text[chunk.start : chunk.end].replace("\x00", " ") == chunk.text:
            return text
    return None


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
