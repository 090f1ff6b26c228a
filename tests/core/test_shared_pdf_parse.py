"""A large PDF is parsed by all workers at once, each reading every n-th page; the result is the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealroom.core.ingest import parsers
from sealroom.core.ingest.parse_pool import SHARED_PDF_BYTES, ParseOutcome, ParserPool, merge
from sealroom.core.ingest.parsers import NO_PDF_TEXT, Parsed, Section, parse

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf-samples"
LARGE = CORPUS / "009-pdflatex-geotopo" / "GeoTopo-komprimiert.pdf"
DAMAGED = CORPUS / "017-unreadable-meta-data" / "unreadablemetadata.pdf"  # PDFium cannot open it


def test_a_large_pdf_shared_between_workers_gives_the_pages_of_one_parse() -> None:
    assert LARGE.stat().st_size > SHARED_PDF_BYTES
    whole = parse(LARGE)
    pool = ParserPool(size=2)
    try:
        outcome = pool.submit(str(LARGE)).result(timeout=120)
        encrypted = pool.submit(str(next(CORPUS.rglob("libreoffice-writer-password.pdf")))).result(60)
    finally:
        pool.close()
    assert outcome.parsed is not None and outcome.status == "indexed"
    assert outcome.parsed.pages == whole.pages == 117
    assert [(s.page, s.heading, s.text) for s in outcome.parsed.sections] == [
        (s.page, s.heading, s.text) for s in whole.sections
    ]
    assert encrypted.parsed is None and encrypted.status == "skipped"  # small: one worker, as before


def test_a_large_pdf_only_pypdf_can_repair_is_read_whole_by_the_first_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pypdf rebuilds the whole file's cross-reference table before it reads a page: one worker does
    it, the others' shares come back empty at once, and the merged pages are those of one parse."""
    assert DAMAGED.stat().st_size > SHARED_PDF_BYTES
    whole = parse(DAMAGED)
    read_by_pypdf: list[tuple[int, int]] = []
    pypdf_reader = parsers._parse_pdf_pypdf

    def counted(path: Path) -> Parsed:
        read_by_pypdf.append(parsers._Budget.part)
        return pypdf_reader(path)

    monkeypatch.setattr(parsers, "_parse_pdf_pypdf", counted)
    first, second = parse(DAMAGED, part=(0, 2)), parse(DAMAGED, part=(1, 2))
    assert read_by_pypdf == [(0, 1)], "the first share read the whole file, the second none"
    assert second.sections == [] and [s.page for s in first.sections] == [s.page for s in whole.sections]
    pool = ParserPool(size=2)
    try:
        outcome = pool.submit(str(DAMAGED)).result(timeout=120)
    finally:
        pool.close()
    assert outcome.parsed is not None and outcome.parsed.pages == whole.pages == 3
    assert [(s.page, s.text) for s in outcome.parsed.sections] == [(s.page, s.text) for s in whole.sections]
    assert "Wirewound" in outcome.parsed.sections[0].text


def test_merging_parts_keeps_page_order_and_the_first_failure() -> None:
    a = ParseOutcome(Parsed([Section("one", page=1), Section("three", page=3)], pages=4))
    b = ParseOutcome(Parsed([Section("two", page=2)], pages=4, truncated=True))
    merged = merge([a, b])
    assert merged.parsed is not None and [s.page for s in merged.parsed.sections] == [1, 2, 3]
    assert merged.parsed.truncated and merged.parsed.pages == 4
    failed = ParseOutcome(None, "failed", "parse error: damaged PDF (PdfReadError)")
    assert merge([a, failed]) is failed
    assert merge([ParseOutcome(Parsed([], pages=2)), ParseOutcome(Parsed([], pages=2))]).reason == NO_PDF_TEXT
