import contextlib
import os
import re
import zipfile
from pathlib import Path

import pytest

from sealroom.core.ingest.parse_pool import ParserPool
from sealroom.core.ingest.parsers import Unindexable, parse, rebuild_xref, sniff
from tests.conftest import CORPUS, PDFS


def test_encrypted_pdf_is_skipped_as_encrypted():
    with pytest.raises(Unindexable, match="encrypted"):
        parse(PDFS / "005-libreoffice-writer-password" / "libreoffice-writer-password.pdf")


def test_an_image_only_pdf_of_a_picture_says_ocr_found_no_text():
    with pytest.raises(Unindexable, match=r"no text found by OCR \(pictures"):
        parse(PDFS / "019-grayscale-image" / "grayscale-image.pdf")


def test_pdf_with_broken_page_tree_still_yields_text():
    path = PDFS / "017-unreadable-meta-data" / "unreadablemetadata.pdf"
    parsed = parse(path)
    assert parsed.pages == 3
    assert "Wirewound" in parsed.sections[0].text
    assert rebuild_xref(b"not a pdf") is None


def test_pdf_pages_and_outline_headings():
    parsed = parse(PDFS / "014-outlines" / "mistitled_outlines_example.pdf")
    assert parsed.pages and parsed.pages > 1
    assert all(s.page for s in parsed.sections)
    assert any(s.heading for s in parsed.sections)
    outlined = parse(PDFS / "006-pdflatex-outline" / "pdflatex-outline.pdf")
    assert [(s.page, s.heading) for s in outlined.sections] == [(1, None), (2, "Foo"), (3, "Bar"), (4, "Bar")]


def test_pdf_text_keeps_symbols_and_joins_words_hyphenated_at_line_ends():
    """PDFium reads the text: pypdf gave ")V" for "⇒ V", "oﬀen" for "offen" and "Vorausset-\nzung"."""
    page = parse(PDFS / "009-pdflatex-geotopo" / "GeoTopo-komprimiert.pdf").sections[20]
    assert page.page == 21
    assert "⇒ V ∩ K = ∅" in page.text and "X \\ K ist offen" in page.text
    assert "Nach Voraussetzung kann K" in page.text
    assert "\r" not in page.text and "\ufffe" not in page.text


def test_right_to_left_script_keeps_its_reading_order():
    """PDFium gives this Arabic word reversed (visual order); such files are read by pypdf."""
    for name in ("habibi.pdf", "habibi-rotated.pdf"):
        text = " ".join(s.text for s in parse(PDFS / "015-arabic" / name).sections)
        assert "حَبيبي" in text and "يبيبَح" not in text


def test_a_pdf_pdfium_cannot_open_is_read_by_pypdf():
    import pypdfium2

    path = PDFS / "017-unreadable-meta-data" / "unreadablemetadata.pdf"
    with pytest.raises(pypdfium2.PdfiumError):
        pypdfium2.PdfDocument(path)
    assert "Wirewound" in parse(path).sections[0].text


def test_long_german_pdf_every_page_located():
    parsed = parse(PDFS / "009-pdflatex-geotopo" / "GeoTopo-komprimiert.pdf")
    assert parsed.pages == 117
    assert "Topologie" in " ".join(s.text for s in parsed.sections)


def test_docx_headings_paragraphs_and_tables():
    parsed = parse(CORPUS / "docx-samples" / "blk-paras-and-tables.docx")
    text = "\n".join(s.text for s in parsed.sections)
    assert "|" in text or len(parsed.sections) >= 1


def test_eml_headers_and_body():
    parsed = parse(CORPUS / "email-samples" / "msg_01.eml")
    first = parsed.sections[0].text
    assert "From:" in first and "Subject:" in first


def test_text_markdown_html_csv(tmp_path: Path):
    (tmp_path / "a.md").write_text("# Terms\nRent is due.\n## Notice\nThree months.")
    (tmp_path / "b.html").write_text(
        "<html><head><script>x()</script></head><body><h1>Policy</h1><p>Keep it.</p>"
    )
    (tmp_path / "c.csv").write_text("name,amount\nrent,1200\n")
    (tmp_path / "d.txt").write_bytes("Caf\xe9 au lait".encode("cp1252"))
    md = parse(tmp_path / "a.md")
    assert [s.heading for s in md.sections] == ["Terms", "Notice"]
    html = parse(tmp_path / "b.html")
    assert html.sections[0].heading == "Policy" and "x()" not in html.sections[0].text
    assert "name: rent; amount: 1200" in parse(tmp_path / "c.csv").sections[0].text
    assert parse(tmp_path / "d.txt").sections[0].text == "Café au lait"


def test_pool_reports_timeout_and_keeps_working(tmp_path: Path):
    fifo = tmp_path / "stuck.txt"
    os.mkfifo(fifo)  # reading it blocks forever, like a parser caught in a loop
    good = tmp_path / "good.txt"
    good.write_text("fine")
    pool = ParserPool(size=1, timeout_s=1.5, memory_mb=1024)
    try:
        stuck = pool.parse(str(fifo))
        assert (stuck.status, stuck.reason) == ("failed", "parse timeout after 1.5 s")
        ok = pool.parse(str(good))
        assert ok.parsed is not None and ok.parsed.sections[0].text == "fine"
    finally:
        pool.close()


def test_pool_reports_a_corrupt_file_with_its_reason(tmp_path: Path):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\n garbage")
    pool = ParserPool(size=1)
    try:
        outcome = pool.parse(str(bad))
    finally:
        pool.close()
    assert outcome.status in ("failed", "skipped") and outcome.reason


def test_a_pdf_that_takes_pdfium_down_is_read_again_by_pypdf(tmp_path: Path):
    """PDFium aborts its process when a stream inflates past the memory limit; pypdf stops with a reason."""
    import zlib

    from bench.hostile import pdf_with

    bomb = tmp_path / "bomb.pdf"
    page = b"BT /F1 12 Tf 72 712 Td (flate bomb) Tj ET\n" * 1_200_000  # 50 MB from 100 KB
    bomb.write_bytes(pdf_with(zlib.compress(page, 9), filters=b"/Filter /FlateDecode"))
    pool = ParserPool(size=1, memory_mb=480)
    try:
        outcome = pool.parse(str(bomb))
        assert outcome.status == "failed"
        assert outcome.reason and outcome.reason.startswith(
            "parse error: content too large when decompressed"
        )
        good = pool.parse(str(PDFS / "001-trivial" / "minimal-document.pdf"))  # a new process took over
        assert good.parsed is not None
    finally:
        pool.close()


def test_nested_messages_are_parsed_once_each(tmp_path: Path):
    import time

    message = "From: a@example.org\nSubject: level 0\n\nThe innermost body.\n"
    for level in range(1, 19):
        boundary = f"b{level}"
        message = (
            f"From: a@example.org\nSubject: level {level}\nMIME-Version: 1.0\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n--{boundary}\n'
            f"Content-Type: text/plain\n\nBody {level}.\n--{boundary}\nContent-Type: message/rfc822\n\n"
            f"{message}\n--{boundary}--\n"
        )
    path = tmp_path / "nested.eml"
    path.write_text(message)
    started = time.monotonic()
    parsed = parse(path)
    assert time.monotonic() - started < 5  # was 2^depth: depth 18 took over a minute
    assert len(parsed.sections) == 19
    texts = [s.text for s in parsed.sections]
    assert sum("The innermost body." in t for t in texts) == 1


def test_failure_reasons_tell_a_damaged_file_from_one_that_cannot_be_read():
    import csv
    import errno
    import zlib

    from sealroom.core.ingest.parse_worker import failure_kind

    pdf = Path("report.pdf")
    assert failure_kind(OSError("unexpected end of stream"), pdf) == "damaged or unexpected content (OSError)"
    assert failure_kind(PermissionError(errno.EACCES, "denied"), pdf).startswith("cannot read the file")
    assert failure_kind(csv.Error("x"), Path("a.csv")) == "damaged CSV (csv.Error)"
    assert failure_kind(zlib.error("y"), pdf) == "damaged compressed data (zlib.error)"
    assert failure_kind(RecursionError(), pdf).startswith("structure nested too deeply")


def _parser_processes() -> list[int]:
    from sealroom.core.runtime.proctree import _children

    found = []
    for pid in _children().get(os.getpid(), []):
        with contextlib.suppress(OSError):  # exited meanwhile
            if b"parse_worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def test_idle_parser_processes_are_stopped_and_started_again_when_needed(tmp_path: Path):
    import time

    doc = tmp_path / "a.txt"
    doc.write_text("first")
    pool = ParserPool(size=2, idle_stop_s=2.0)
    try:
        assert pool.parse(str(doc)).parsed is not None
        assert pool.running == 1 and len(_parser_processes()) == 1
        deadline = time.monotonic() + 10
        while (pool.running or _parser_processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.running == 0 and _parser_processes() == []  # the idle worker exited
        doc.write_text("second")
        again = pool.parse(str(doc))
        assert again.parsed is not None and again.parsed.sections[0].text == "second"
        assert pool.running == 1
    finally:
        pool.close()


def test_a_parser_process_serves_file_after_file_when_the_app_itself_is_large(tmp_path: Path):
    """A child's getrusage peak starts at its parent's resident size (kept across fork and exec): the
    workers of an app holding 400 MB must not take themselves for grown large and quit after each file."""
    import numpy as np

    ballast = np.ones(400 << 17)  # 400 MB, touched
    pool = ParserPool(size=1, idle_stop_s=0)
    try:
        pids = []
        for i in range(3):
            doc = tmp_path / f"{i}.txt"
            doc.write_text(f"note {i}")
            assert pool.parse(str(doc)).parsed is not None
            pids.append(_parser_processes())
        assert len(pids[0]) == 1 and pids[0] == pids[1] == pids[2], f"one worker for all three: {pids}"
    finally:
        pool.close()
        del ballast


def test_running_headers_and_footers_are_stripped_from_pages_but_body_lines_stay():
    from sealroom.core.ingest.parsers import Parsed, Section, without_running_lines

    topics = ["Integers", "Money", "Text", "Dates", "Booleans", "Ranges"]
    pages = [
        Section(
            f"12/6/26, 1:03 PM   Manual: Data Types\n8.{n}. {topic}\nThe {topic.lower()} limit is {n} MB.\n"
            f"Each entry is checked.\nSee the {topic.lower()} table.\nfile:///tmp/print.html   {n}/6",
            page=n,
        )
        for n, topic in enumerate(topics, 1)
    ]
    cleaned = without_running_lines(Parsed(pages, pages=6))
    assert cleaned.sections[2].text == (
        "8.3. Text\nThe text limit is 3 MB.\nEach entry is checked.\nSee the text table."
    )
    # too few pages to tell a running line from text: left alone
    assert without_running_lines(Parsed(pages[:3], pages=3)).sections == pages[:3]


def test_html_page_furniture_is_left_out_and_table_cells_stay_apart(tmp_path: Path):
    (tmp_path / "page.html").write_text(
        '<html><body><div class="related" role="navigation"><div><a href="i.html">index</a></div> next</div>'
        '<div class="body"><h2>Numeric Types<a class="headerlink" href="#n">\u00b6</a></h2>'
        "<table><tr><th>Name</th><th>Storage Size</th></tr><tr><td>smallint</td><td>2 bytes</td></tr></table>"
        "<dl><dt>bigint</dt><dd>large-range integer</dd></dl></div>"
        '<nav>Previous topic</nav><div class="footer">\u00a9 Copyright 2023</div></body></html>',
        encoding="utf-8",
    )
    [section] = parse(tmp_path / "page.html").sections
    assert section.heading == "Numeric Types"
    assert "Name | Storage Size\nsmallint | 2 bytes" in section.text
    assert re.search(r"\nbigint\n+large-range integer", section.text)
    assert not any(w in section.text for w in ("index", "next", "Previous", "Copyright", "\u00b6"))


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(32)


@pytest.mark.parametrize(
    ("name", "content", "kind", "what"),
    [
        ("LICENSE", b"Permission is hereby granted, free of charge, to any person.\n", ".txt", "text"),
        ("README", "Lisez-moi : données à caractère personnel.\n".encode("cp1252"), ".txt", "text"),
        ("notes.log", b"2026-12-01 backup finished\n", ".txt", "text"),
        ("page", b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", ".html", "HTML page"),
        ("mail", b"From: a@example.org\nTo: b@example.org\nSubject: Lease\n\nBody", ".eml", "e-mail message"),
        ("scan.png", _png(), ".png", "PNG image"),
        ("photo", b"\xff\xd8\xff\xe0" + bytes(64), ".jpg", "JPEG image"),
        ("note.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), None, "damaged Office 97-2003 file"),
        ("blob", bytes(range(256)) * 8, None, "binary data"),
        ("empty", b"", None, "empty file"),
    ],
)
def test_a_file_whose_name_does_not_say_its_type_is_judged_by_its_content(
    tmp_path: Path, name: str, content: bytes, kind: str | None, what: str
):
    path = tmp_path / name
    path.write_bytes(content)
    found, description = sniff(path)
    assert found == kind and what in description


def test_sniffed_pdf_word_and_zip_files_are_read_by_their_parser_or_named(tmp_path: Path):
    pdf, docx = tmp_path / "scan-0042", tmp_path / "contract-final"
    pdf.write_bytes((PDFS / "001-trivial" / "minimal-document.pdf").read_bytes())
    docx.write_bytes((CORPUS / "docx-samples" / "test.docx").read_bytes())
    assert sniff(pdf) == (".pdf", "PDF document") and parse(pdf).sections
    assert sniff(docx) == (".docx", "Word document") and parse(docx).sections
    archive = tmp_path / "bundle"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    assert sniff(archive) == (".xlsx", "Excel workbook")
    with pytest.raises(Unindexable, match="damaged spreadsheet"):
        parse(archive)
    other = tmp_path / "photos"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("holiday.jpg", b"\xff\xd8\xff")
    assert sniff(other) == (None, "ZIP archive")
    with pytest.raises(Unindexable, match=r"unsupported type \(ZIP archive\)"):
        parse(other)


# --- locators of text files (issue 28): headings of plain text, Markdown and HTML; sections as slices ------
RFC_LIKE = """\
Network Working Group                                          A. Author
Request for Comments: 9999                                     June 2026


                     The Example Transfer Protocol

Status of This Memo

   This document is an example. It has no status.

1.  Introduction

   The protocol moves examples from one place to another place, slowly
   and with care.

3.2.  Message Syntax

   A message is a line of text.

NO WARRANTY

   The examples come with no warranty.

Overview of the Design
======================

   One design, drawn once.
"""
NOT_HEADINGS = """\
Dear Sam,

Here are the steps we agreed on.

1. Install the package with the installer and restart.

5. You are finished.

   for line in open(path):

See https://example.org/docs for the rest.

Thanks!

                                        Yours sincerely,

J. Smith
"""


def _headings(tmp_path: Path, name: str, text: str) -> list[str | None]:
    (tmp_path / name).write_text(text, encoding="utf-8", newline="")
    return [s.heading for s in parse(tmp_path / name).sections]


def test_plain_text_headings_numbered_capitals_centred_and_underlined(tmp_path: Path):
    assert _headings(tmp_path, "rfc9999.txt", RFC_LIKE) == [
        None,
        "The Example Transfer Protocol",
        "1. Introduction",
        "3.2. Message Syntax",
        "NO WARRANTY",
        "Overview of the Design",
    ]


def test_plain_text_lines_that_read_as_text_are_not_headings(tmp_path: Path):
    """A letter: list items, a code line, a link, a closing and a signature are not section titles."""
    assert _headings(tmp_path, "letter.txt", NOT_HEADINGS) == [None]


def test_a_numbered_paragraph_opening_with_a_title_is_a_heading_and_one_without_ends_it(tmp_path: Path):
    text = (
        "   TERMS AND CONDITIONS\n\n"
        '   1. Definitions.\n\n      "License" shall mean these terms.\n\n'
        "   2. Grant of Copyright License. Subject to the terms and conditions of\n"
        "      this License, each Contributor grants a licence.\n\n"
        "   3. You may copy and distribute verbatim copies of the Work as you\n"
        "      receive it.\n"
    )
    assert _headings(tmp_path, "LICENSE.txt", text) == [
        "TERMS AND CONDITIONS",
        "1. Definitions.",
        "2. Grant of Copyright License.",
        "TERMS AND CONDITIONS",  # item 3 has no title: not under item 2's
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_text_sections_are_slices_of_the_file_where_their_offset_says(tmp_path: Path, newline: str):
    for name, text in (("rfc.txt", RFC_LIKE), ("notes.md", "# A\nx\n\n## B\ny\n")):
        content = text.replace("\n", newline)
        (tmp_path / name).write_bytes(content.encode("utf-8"))
        sections = parse(tmp_path / name).sections
        assert len(sections) > 1
        for s in sections:
            assert content[s.offset : s.offset + len(s.text)] == s.text
        assert sections[-1].offset + len(sections[-1].text) == len(content)


def test_markdown_headings_skip_code_fences_and_take_underlined_and_closed_ones(tmp_path: Path):
    text = (
        "Intro line.\n\n# Setup ##\n\n```sh\n# not a heading: a shell comment\nmake\n```\n\n"
        "Usage\n-----\n\nRun it.\n\n~~~\n## nor this\n~~~\nStill usage.\n"
    )
    sections = parse(_write(tmp_path / "README.md", text)).sections
    assert [s.heading for s in sections] == [None, "Setup", "Usage"]
    assert "# not a heading" in sections[1].text and "Still usage." in sections[2].text


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_html_sections_take_the_nearest_heading_of_any_level_even_inside_other_tags(tmp_path: Path):
    page = (
        "<html><body><h1>Manual</h1><p>Intro.</p>"
        "<section><h2><span class='section-number'>3. </span>Installing</h2><p>Get it.</p>"
        "<div><h4 id='t'><a href='#t'><span>Timeouts</span></a>\u00b6</h4><p>Wait 30 s.</p></div>"
        "<h5>Retries</h5><p>Try 3 times.</p></section>"
        "<h2>Uninstalling</h2><p>Remove it.</p></body></html>"
    )
    sections = parse(_write(tmp_path / "manual.html", page)).sections
    found = {s.heading: s.text for s in sections}
    assert list(found) == ["Manual", "3. Installing", "Timeouts", "Retries", "Uninstalling"]
    assert "Wait 30 s." in found["Timeouts"] and "Wait 30 s." not in found["3. Installing"]
    assert "Try 3 times." in found["Retries"] and "Remove it." in found["Uninstalling"]
