"""A cited passage of a text file names the lines it spans (issue 28): read from the file, when the file
still holds the passage where the index says."""

import re
from pathlib import Path

from sealroom.core.ingest.chunker import chunk_sections
from sealroom.core.ingest.parsers import Section, parse
from sealroom.core.store.catalog import Catalog
from sealroom.core.store.passages import passage


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def _numbered_lines(n: int = 60) -> list[str]:
    """Lines 1..n; every sixth is blank (paragraphs), line 38 a heading on its own, lines 40-44 a clause."""
    lines = []
    for i in range(1, n + 1):
        if i == 38:
            lines.append("3.  Payment Terms")
        elif 40 <= i <= 44:
            lines.append(f"   The rent of line {i} is due on the first day of the month, in euros.")
        elif i % 6 == 0 or i in (37, 39, 45):
            lines.append("")
        else:
            lines.append(f"   Line {i} says nothing much about anything that matters to us here.")
    return lines


def _index(tmp_path: Path, path: Path, sha: str) -> Catalog:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder(str(path.parent))
    catalog.upsert_file(catalog.folders()[0][0], str(path), 1, 1, sha, "pending")
    chunks = chunk_sections(parse(path).sections, sha, word_spans, size=40, overlap=8)
    catalog.finish_content(sha, "indexed", None, None, chunks)
    return catalog


def _cite(catalog: Catalog, sha: str, text: str, quote: str):
    """The passage of `quote` (its offsets in `text`), as a citation opens it."""
    start = text.index(quote)
    end = start + len(quote)
    chunk = next(c for c in catalog.chunks_of(sha) if c.start <= start < c.end)
    return passage(catalog, sha, chunk.seq, start, end)


def test_a_text_files_passage_names_its_lines_and_heading(tmp_path: Path):
    text = "\n".join(_numbered_lines()) + "\n"
    path = tmp_path / "lease.txt"
    path.write_text(text)
    catalog = _index(tmp_path, path, "a" * 64)
    quote = text[text.index("The rent of line 40") : text.index("in euros.", text.index("line 44")) + 9]
    cited = _cite(catalog, "a" * 64, text, quote)
    assert cited.lines == (40, 44)
    assert cited.text == quote and cited.page is None
    assert any(c.heading == "3. Payment Terms" and "line 40" in c.text for c in catalog.chunks_of("a" * 64))
    one = _cite(catalog, "a" * 64, text, "Line 50 says nothing")
    assert one.lines == (50, 50)


def test_lines_are_counted_in_the_file_as_it_was_read_crlf_and_cp1252(tmp_path: Path):
    lines = _numbered_lines()
    lines[2] = "   Caf\xe9 cr\xe8me, line 3."
    text = "\r\n".join(lines) + "\r\n"
    path = tmp_path / "old.txt"
    path.write_bytes(text.encode("cp1252"))
    catalog = _index(tmp_path, path, "b" * 64)
    assert _cite(catalog, "b" * 64, text, "The rent of line 42").lines == (42, 42)


def test_markdown_passages_have_lines_too(tmp_path: Path):
    text = "# Guide\n\nIntro.\n\n## Install\n\nRun the installer.\nThen restart.\n"
    path = tmp_path / "guide.md"
    path.write_text(text)
    catalog = _index(tmp_path, path, "c" * 64)
    cited = _cite(catalog, "c" * 64, text, "Run the installer.\nThen restart.")
    assert cited.lines == (7, 8)


def test_no_lines_when_the_file_changed_or_is_not_a_text_file(tmp_path: Path):
    text = "\n".join(_numbered_lines()) + "\n"
    path = tmp_path / "lease.txt"
    path.write_text(text)
    catalog = _index(tmp_path, path, "d" * 64)
    path.write_text("A new first line.\n" + text)  # not indexed again yet: the offsets are the old file's
    assert _cite(catalog, "d" * 64, text, "The rent of line 40").lines is None
    path.unlink()
    assert _cite(catalog, "d" * 64, text, "The rent of line 40").lines is None
    pdf = tmp_path / "x.pdf"  # a page's offsets are the page's, not the file's
    pdf.write_bytes(b"%PDF-1.4\n" + text.encode())
    catalog.upsert_file(catalog.folders()[0][0], str(pdf), 1, 1, "e" * 64, "pending")
    page = chunk_sections([Section(text, page=2)], "e" * 64, word_spans, size=40, overlap=8)
    catalog.finish_content("e" * 64, "indexed", None, 2, page)
    assert _cite(catalog, "e" * 64, text, "The rent of line 40").lines is None
