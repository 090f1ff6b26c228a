import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sealroom.core.ingest.chunker import chunk_sections, split_section
from sealroom.core.ingest.parsers import Section


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def test_short_section_is_one_chunk_with_its_page_and_heading():
    chunks = chunk_sections(
        [Section("  Rent is due monthly.  ", page=3, heading="Terms")], "ab" * 32, word_spans
    )
    assert len(chunks) == 1
    c = chunks[0]
    assert (c.text, c.page, c.heading) == ("Rent is due monthly.", 3, "Terms")
    assert "  Rent is due monthly.  "[c.start : c.end] == c.text


def test_long_section_overlaps_and_respects_size():
    text = " ".join(f"w{i}." for i in range(1000))
    ranges = split_section(text, word_spans(text), size=100, overlap=20)
    assert len(ranges) > 10
    for (s1, e1), (s2, _) in itertools.pairwise(ranges):
        assert s2 < e1, "consecutive chunks overlap"
        assert s2 > s1, "chunks advance"
    for s, e in ranges:
        assert len(word_spans(text[s:e])) <= 100
    assert ranges[0][0] == 0 and ranges[-1][1] == len(text)


def test_chunks_never_span_pages():
    sections = [Section("one two three", page=1), Section("four five", page=2)]
    chunks = chunk_sections(sections, "0" * 64, word_spans, size=50)
    assert [(c.page, c.text) for c in chunks] == [(1, "one two three"), (2, "four five")]
    assert [c.seq for c in chunks] == [0, 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="abc .\n", min_size=1, max_size=8), min_size=1, max_size=400),
    st.integers(5, 60),
    st.integers(0, 4),
)
def test_every_word_is_in_some_chunk(words, size, overlap):
    text = " ".join(words)
    spans = word_spans(text)
    ranges = split_section(text, spans, size=size, overlap=overlap)
    for s, e in spans:
        assert any(a <= s and e <= b for a, b in ranges)


def test_the_same_text_twice_in_a_file_is_one_chunk():
    sections = [Section("Confidential — do not forward.", page=p) for p in (1, 2, 3)]
    sections.append(Section("The settlement is 40,000 euros.", page=4))
    chunks = chunk_sections(sections, "cd" * 32, word_spans)
    assert [(c.text, c.page, c.seq) for c in chunks] == [
        ("Confidential — do not forward.", 1, 0),
        ("The settlement is 40,000 euros.", 4, 1),
    ]


def test_a_huge_one_line_section_is_tokenized_in_windows_and_stops_at_the_limit():
    calls: list[int] = []

    def spans(text: str) -> list[tuple[int, int]]:
        calls.append(len(text))
        return word_spans(text)

    text = ",".join(f"cell{i} value{i}" for i in range(100_000))  # ~1.6 MB on one line
    chunks = chunk_sections([Section(text, page=None)], "cd" * 32, spans, size=50, overlap=10, limit=300)
    assert len(chunks) == 300
    assert max(calls) <= 60_000, "never the whole section at once"
    assert sum(calls) < len(text) // 4, "stops tokenizing once the limit is reached"
    for c in chunks:
        assert text[c.start : c.end] == c.text
    whole = chunk_sections([Section(text, page=None)], "cd" * 32, word_spans, size=50, overlap=10)
    assert whole[-1].text.endswith("cell99999 value99999"), "windows cover the whole text"
    assert len({c.text for c in whole}) == len(whole)


def test_a_nul_in_document_text_comes_back_from_the_catalog_as_it_was_chunked(tmp_path):
    """NUL + two hex digits is the catalog's escape for file-name bytes: a PDF's stray NUL followed by
    "dc" came back as a lone surrogate, which the embedder refused when resuming from the catalog."""
    from sealroom.core.store.catalog import Catalog

    section = Section("Invoice\x00dc12 total\x0000 due", page=1)
    chunks = chunk_sections([section], "cd" * 32, word_spans)
    assert [c.text for c in chunks] == ["Invoice dc12 total 00 due"]
    assert section.text.replace("\x00", " ")[chunks[0].start : chunks[0].end] == chunks[0].text
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.finish_content("cd" * 32, "indexed", None, 1, chunks)
    assert [c.text for c in catalog.chunks_of("cd" * 32)] == ["Invoice dc12 total 00 due"]
    catalog.close()


def test_chunk_offsets_are_the_documents_a_sections_offset_moves_them(tmp_path):
    """A text file's sections are slices of the file: its chunks' offsets are offsets in the file, so a
    citation can say which lines it spans."""
    from sealroom.core.ingest.parsers import parse

    chunks = chunk_sections([Section("  Rent is due.", offset=120)], "ab" * 32, word_spans)
    assert (chunks[0].start, chunks[0].end) == (122, 134)
    text = "".join(
        f"{n}.  Clause {n}\n\n" + " ".join(f"w{n}x{i}" for i in range(60)) + "\n\n" for n in range(1, 8)
    )
    (tmp_path / "terms.txt").write_text(text)
    sections = parse(tmp_path / "terms.txt").sections
    assert [s.heading for s in sections] == [f"{n}. Clause {n}" for n in range(1, 8)]
    chunks = chunk_sections(sections, "cd" * 32, word_spans, size=25, overlap=5)
    assert len(chunks) > 14
    for c in chunks:
        assert text[c.start : c.end] == c.text
