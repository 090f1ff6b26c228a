"""Scanned pages read by OCR (issue 26), with the real Tesseract: image-only PDF pages and image files are
cited like any page and say they are OCR text; bombs and endless TIFFs end with a reason."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sealroom.core.ingest.parse_pool import ParserPool
from sealroom.core.ingest.parsers import Unindexable, parse
from tests.conftest import PDFS, ROOT

sys.path.insert(0, str(ROOT / "bench"))
from scans import cer, degrade, many_page_tiff, png_header_only, render, scanned_copy, text_layer

FOUR_PAGES = PDFS / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf"


def test_a_scanned_pdf_is_read_by_ocr_and_each_page_says_so(tmp_path: Path):
    import pypdfium2

    scan = scanned_copy(FOUR_PAGES, tmp_path / "scan.pdf", dpi=300)
    original = pypdfium2.PdfDocument(FOUR_PAGES)
    parsed = parse(scan)
    assert [s.page for s in parsed.sections] == [1, 2, 3, 4] and parsed.pages == 4
    for section in parsed.sections:
        assert section.heading and section.heading.startswith("OCR text, confidence ")
        assert int(section.heading.split()[-2]) >= 80
        assert cer(text_layer(original, section.page - 1), section.text) <= 0.03


def test_image_files_are_read_a_tiff_page_by_page(tmp_path: Path):
    import pypdfium2

    document = pypdfium2.PdfDocument(FOUR_PAGES)
    pages = [render(document, i, 300) for i in range(2)]
    png, tiff = tmp_path / "letter.png", tmp_path / "fax.tif"
    degrade(pages[0], seed=1).save(png)
    pages[0].save(tiff, save_all=True, append_images=[pages[1]])
    noisy = parse(png).sections
    assert len(noisy) == 1 and "Hello, here is some text without a meaning" in " ".join(noisy[0].text.split())
    assert [s.page for s in parse(tiff).sections] == [1, 2]


def test_an_image_bomb_is_refused_before_it_is_decoded(tmp_path: Path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30_000, 30_000))
    with pytest.raises(Unindexable, match="image too large to read"):
        parse(bomb)


def test_a_tiff_of_ten_thousand_pages_stops_at_the_page_limit_with_a_reason(tmp_path: Path):
    from sealroom.core.ingest import ocr

    endless = tmp_path / "endless.tif"
    endless.write_bytes(many_page_tiff(10_000))
    with pytest.raises(Unindexable, match="no text found by OCR"):
        parse(endless)
    assert ocr.MAX_PAGES < 10_000


def test_damaged_images_end_with_a_reason(tmp_path: Path):
    import pypdfium2

    page = render(pypdfium2.PdfDocument(FOUR_PAGES), 0, 150)
    whole = tmp_path / "whole.jpg"
    page.save(whole)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:4000])
    try:
        parse(cut)  # PIL reads what is there of a truncated JPEG, or says it is damaged
    except Unindexable as why:
        assert "damaged image" in str(why) or "no text" in str(why)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(Unindexable, match="damaged image"):
        parse(garbage)


def test_a_long_scan_outlasts_the_parse_timeout_as_long_as_each_page_progresses(tmp_path: Path):
    import pypdfium2

    document = pypdfium2.PdfDocument(FOUR_PAGES)
    pages = [render(document, i % 4, 300) for i in range(8)]
    scan = tmp_path / "long-scan.pdf"
    pages[0].save(scan, save_all=True, append_images=pages[1:], resolution=300)
    pool = ParserPool(size=1, timeout_s=10)  # about 3.5 s a page: eight pages take nearly three timeouts
    try:
        outcome = pool.parse(str(scan))
    finally:
        pool.close()
    assert outcome.parsed is not None, outcome.reason
    assert [s.page for s in outcome.parsed.sections] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_with_ocr_off_a_scan_says_so(tmp_path: Path):
    scan = scanned_copy(FOUR_PAGES, tmp_path / "scan.pdf", dpi=150)
    pool = ParserPool(size=1, ocr=False)
    try:
        outcome = pool.parse(str(scan))
    finally:
        pool.close()
    assert outcome.parsed is None and outcome.status == "skipped" and "no extractable text" in outcome.reason


def test_a_missing_ocr_library_is_said_as_such_not_as_a_damaged_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import pypdfium2

    png = tmp_path / "letter.png"
    render(pypdfium2.PdfDocument(FOUR_PAGES), 0, 100).save(png)
    monkeypatch.setitem(sys.modules, "pytesseract", None)  # an installation without it
    with pytest.raises(Unindexable, match="OCR is not available: pytesseract is missing"):
        parse(png)
