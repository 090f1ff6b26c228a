"""Spreadsheets, slides, OpenDocument, RTF and Outlook messages (issue 26): each read into passages cited by
sheet and rows, slide, heading or attachment, and each bomb-safe. The files are made by the libraries the
office formats are defined by (openpyxl, python-pptx, odfpy); the .msg files are real Outlook messages."""

from __future__ import annotations

import itertools
import zipfile
from pathlib import Path

import pytest

from sealroom.core.ingest.parsers import Unindexable, parse, sniff
from tests.conftest import CORPUS

MSGS = CORPUS / "msg-samples"


def make_xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Retention"
    sheet.append(["Record", "Kept for", "Owner"])
    for n in range(1, 41):
        sheet.append([f"Record type {n}", f"{n} years", "Records office"])
    sheet.append(["Audit logs", "10 years after the contract ends", "Compliance"])
    other = book.create_sheet("Contacts")
    other.append(["Name", "Role"])
    other.append(["Miriam Okafor", "Data protection officer"])
    book.save(path)
    return path


def make_pptx(path: Path) -> Path:
    import pptx

    deck = pptx.Presentation()
    for title, body in [
        ("Quarterly review", "Revenue grew 4 %."),
        ("Data breach drill", "Notify the DPO within 72 hours."),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.slides[1].notes_slide.notes_text_frame.text = "Ask legal about the Irish office."
    deck.save(path)
    return path


def make_odf(path: Path, kind: str) -> Path:
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet, OpenDocumentText
    from odf.style import MasterPage, PageLayout
    from odf.table import Table, TableCell, TableRow
    from odf.text import H, P

    if kind == "odt":
        doc = OpenDocumentText()
        doc.text.addElement(H(outlinelevel=1, text="Termination"))
        doc.text.addElement(P(text="Either party may end this agreement with 90 days' written notice."))
        doc.text.addElement(H(outlinelevel=1, text="Governing law"))
        doc.text.addElement(P(text="This agreement is governed by the laws of Ireland."))
    elif kind == "ods":
        doc = OpenDocumentSpreadsheet()
        table = Table(name="Fees")
        for cells in [["Service", "Fee"], ["Conveyancing", "1200"], ["Probate", "950"]]:
            row = TableRow()
            for value in cells:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=value))
                row.addElement(cell)
            table.addElement(row)
        empty = TableRow(numberrowsrepeated=1_000_000)  # a sheet padded to its last row, as Calc writes them
        empty.addElement(TableCell(numbercolumnsrepeated=16384))
        table.addElement(empty)
        doc.spreadsheet.addElement(table)
    else:
        doc = OpenDocumentPresentation()
        layout = PageLayout(name="layout")
        doc.automaticstyles.addElement(layout)
        master = MasterPage(name="master", pagelayoutname=layout)
        doc.masterstyles.addElement(master)
        for title, body in [
            ("Intake process", "Scan every referral on arrival."),
            ("Escalation", "Call the duty solicitor."),
        ]:
            page = Page(masterpagename=master)
            for text in (title, body):
                frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
                box = TextBox()
                box.addElement(P(text=text))
                frame.addElement(box)
                page.addElement(frame)
            doc.presentation.addElement(page)
    doc.save(str(path))
    return path


RTF = r"""{\rtf1\ansi\deff0{\fonttbl{\f0 Times New Roman;}}
{\pard\b Confidentiality\b0\par}
{\pard The receiving party keeps the information confidential for five years.\par}
{\pard Caf\'e9 meetings are not private.\par}
}"""


def test_a_spreadsheet_is_cited_by_sheet_and_rows_with_its_header_carried(tmp_path: Path):
    parsed = parse(make_xlsx(tmp_path / "retention.xlsx"))
    headings = [s.heading for s in parsed.sections]
    assert headings[0].startswith("Retention, rows 2–") and headings[-2].endswith("–42")
    assert headings[-1] == "Contacts, row 2"
    ranges = [tuple(map(int, h.split("rows ")[1].split("–"))) for h in headings[:-1]]
    assert all(
        a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges)
    )  # every row in one passage, none twice
    assert all(
        len(s.text.splitlines()) == b - a + 1 for s, (a, b) in zip(parsed.sections, ranges, strict=False)
    )
    last = parsed.sections[-2].text.splitlines()[-1]
    assert last == "Record: Audit logs; Kept for: 10 years after the contract ends; Owner: Compliance"


def test_an_opendocument_sheet_padded_to_a_million_rows_is_read_without_expanding_them(tmp_path: Path):
    parsed = parse(make_odf(tmp_path / "fees.ods", "ods"))
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Fees, rows 2–3", "Service: Conveyancing; Fee: 1200\nService: Probate; Fee: 950")
    ]


def test_slides_are_cited_by_number_and_title_with_their_notes(tmp_path: Path):
    for path in (make_pptx(tmp_path / "review.pptx"), make_odf(tmp_path / "intake.odp", "odp")):
        parsed = parse(path)
        assert [s.page for s in parsed.sections] == [1, 2] and parsed.pages == 2
        assert parsed.sections[1].heading.startswith("Slide 2: ")
    deck = parse(tmp_path / "review.pptx")
    assert deck.sections[1].heading == "Slide 2: Data breach drill"
    assert (
        "Notify the DPO within 72 hours." in deck.sections[1].text and "Irish office" in deck.sections[1].text
    )


def test_opendocument_text_and_rtf_keep_headings_and_accents(tmp_path: Path):
    odt = parse(make_odf(tmp_path / "agreement.odt", "odt"))
    assert [s.heading for s in odt.sections] == ["Termination", "Governing law"]
    assert "90 days' written notice" in odt.sections[0].text
    rtf = tmp_path / "nda.rtf"
    rtf.write_text(RTF)
    text = parse(rtf).sections[0].text
    assert "keeps the information confidential for five years." in text and "Café meetings" in text


def test_an_outlook_message_has_its_headers_body_and_attachments_each_cited_inside_it():
    parsed = parse(MSGS / "unicode.msg")
    first = parsed.sections[0]
    assert first.heading == "Test for TIF files"
    assert (
        "From: Brian Zhou <brizhou@gmail.com>" in first.text
        and "experiment with the MS Outlook" in first.text
    )
    assert "Attachments: import OleFileIO.tif, raised value error.tif" in first.text
    # the attachments are screenshots (TIFF): read by OCR, cited inside the message with their own page
    attached = [
        s for s in parsed.sections[1:] if (s.heading or "").startswith("import OleFileIO.tif › OCR text")
    ]
    assert attached and attached[0].page == 1 and "Refactoring" in attached[0].text
    plain = parse(MSGS / "strangeDate.msg").sections[0]
    assert plain.heading == "MSG Test File" and '"Jane Doe" or "Jane Roe"' in plain.text


def test_a_tk_message_catalogue_named_msg_is_read_as_text(tmp_path: Path):
    catalogue = tmp_path / "fr.msg"
    catalogue.write_text('namespace eval ::tk {\n    ::msgcat::mcset fr "&Abort" "&Annuler"\n}\n')
    assert "Annuler" in parse(catalogue).sections[0].text


@pytest.mark.parametrize("suffix", [".xlsx", ".pptx", ".odt", ".ods", ".odp", ".docx"])
def test_a_compression_bomb_of_each_office_type_is_refused_before_it_is_parsed(tmp_path: Path, suffix: str):
    bomb = tmp_path / f"bomb{suffix}"
    member = {
        ".xlsx": "xl/worksheets/sheet1.xml",
        ".pptx": "ppt/slides/slide1.xml",
        ".docx": "word/document.xml",
    }
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        if suffix.startswith(".od"):
            z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        z.writestr(member.get(suffix, "content.xml"), b"<a>" + b" " * (70 << 20) + b"</a>")
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(Unindexable, match="too large when unpacked"):
        parse(bomb)


@pytest.mark.parametrize("suffix", [".xlsx", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".msg"])
def test_a_truncated_file_of_each_type_is_skipped_with_a_reason(tmp_path: Path, suffix: str):
    makers = {
        ".xlsx": lambda p: make_xlsx(p),
        ".pptx": lambda p: make_pptx(p),
        ".odt": lambda p: make_odf(p, "odt"),
        ".ods": lambda p: make_odf(p, "ods"),
        ".odp": lambda p: make_odf(p, "odp"),
        ".rtf": lambda p: p.write_text(RTF) and p,
        ".msg": lambda p: p.write_bytes((MSGS / "strangeDate.msg").read_bytes()) and p,
    }
    whole = tmp_path / f"whole{suffix}"
    makers[suffix](whole)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    try:
        parsed = parse(cut)
    except Unindexable as why:
        assert str(why)
    else:  # what survives the cut is read (a stream format keeps its first part)
        assert parsed.sections and suffix in (".rtf", ".msg")


def test_each_new_type_is_recognised_without_its_extension(tmp_path: Path):
    files = {
        "xlsx": make_xlsx(tmp_path / "a.xlsx"),
        "pptx": make_pptx(tmp_path / "b.pptx"),
        "odt": make_odf(tmp_path / "c.odt", "odt"),
        "ods": make_odf(tmp_path / "d.ods", "ods"),
        "odp": make_odf(tmp_path / "e.odp", "odp"),
        "msg": MSGS / "strangeDate.msg",
    }
    for kind, path in files.items():
        bare = tmp_path / f"no-extension-{kind}"
        bare.write_bytes(path.read_bytes())
        assert sniff(bare)[0] == f".{kind}", kind
        assert parse(bare).sections


def test_an_email_attachment_is_read_as_its_own_type_and_cited_inside_the_message(tmp_path: Path):
    from email.message import EmailMessage

    from tests.conftest import PDFS

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "Signed lease"
    message.set_content("The signed lease is attached.")
    pdf = (PDFS / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf").read_bytes()
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="lease-signed.pdf")
    message.add_attachment(
        b"\x89PNG\r\n\x1a\n" + bytes(40), maintype="image", subtype="png", filename="stamp.png"
    )
    path = tmp_path / "lease.eml"
    path.write_bytes(bytes(message))
    sections = parse(path).sections
    assert (
        sections[0].heading == "Signed lease"
        and "Attachments: lease-signed.pdf, stamp.png" in sections[0].text
    )
    pages = [s.page for s in sections if (s.heading or "").startswith("lease-signed.pdf")]
    assert pages[:1] == [1] and max(pages) == 4
    stamp = [s.text for s in sections if s.heading == "stamp.png"]
    assert stamp == ["Attachment stamp.png: not indexed (damaged image (UnidentifiedImageError))"]
