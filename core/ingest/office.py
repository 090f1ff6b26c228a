"""Spreadsheets, slide decks, OpenDocument and RTF files, and Outlook messages: the formats a regulated
office holds besides PDF and Word.

Each is bomb-safe as `.docx` is: a package's unpacked XML is measured before it is parsed, a sheet's
repeated rows and cells are never expanded into memory, and a file stops at the per-file text budget.
Citations: a sheet by its name and row range, a slide by its number and title, an attachment by its name
inside the message ("message.msg › report.pdf", page as the attachment's).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sealroom.core.ingest.parsers import (
    NO_TEXT,
    Parsed,
    Section,
    Unindexable,
    _Budget,
    _require_text,
    _unpacked_size,
    parse_text,
    read_text,
    sniff,
)

#: Unpacked XML of an OpenDocument file at most: odfpy holds the whole tree in memory (about 15x the XML)
MAX_ODF_XML = 16 << 20
#: Rows of a sheet per cited passage (a passage is also cut at about SHEET_CHARS characters)
SHEET_ROWS, SHEET_CHARS = 30, 1800
#: A run of repeated cells or rows in a sheet counts this many times at most (an empty run: not at all)
MAX_REPEAT = 50
#: Attachments inside attachments: a message in a message is read, one more level is listed by name only
MAX_DEPTH = 2


def _check_package(path: Path, limit: int) -> None:
    import zipfile

    try:
        unpacked = _unpacked_size(path)
    except zipfile.BadZipFile:
        raise Unindexable("damaged file (not a readable ZIP package)") from None
    if unpacked > limit:
        raise Unindexable(
            f"too large when unpacked ({unpacked / 1e6:.0f} MB of XML; the limit is {limit / 1e6:.0f} MB): "
            "a compression bomb, or far more text than the per-file budget"
        )


class _Text:
    """Counts the characters a parse has produced against the per-file budget."""

    def __init__(self) -> None:
        self.used = 0

    def full(self, more: int = 0) -> bool:
        self.used += more
        if _Budget.chars and self.used > _Budget.chars:
            _Budget.cut = True
            return True
        return False


# --- spreadsheets ---------------------------------------------------------------------------------------
def _sheet_sections(name: str, rows: Iterable[tuple[int, list[str]]], budget: _Text) -> Iterator[Section]:
    """A sheet as passages of up to SHEET_ROWS rows, each row as 'header: value; …' (the header row is
    carried with every row), headed by the sheet's name and the rows' numbers as the sheet shows them."""
    header: list[str] | None = None
    block: list[str] = []
    first = last = 0
    for number, cells in rows:
        if not any(cells):
            continue
        if header is None:
            header = [c or f"column {i + 1}" for i, c in enumerate(cells)]
            continue
        line = "; ".join(f"{h}: {v}" for h, v in zip(header, cells, strict=False) if v)
        extra = [v for v in cells[len(header) :] if v]
        line = "; ".join([line, *extra]) if extra else line
        if not line:
            continue
        if block and (len(block) >= SHEET_ROWS or sum(map(len, block)) + len(line) > SHEET_CHARS):
            yield Section("\n".join(block), heading=_rows(name, first, last))
            block = []
        if not block:
            first = number
        block.append(line)
        last = number
        if budget.full(len(line) + 1):
            break
    if block:
        yield Section("\n".join(block), heading=_rows(name, first, last))
    elif header:  # a sheet with a header row only
        yield Section(" | ".join(header), heading=f"{name}, row 1")


def _rows(sheet: str, first: int, last: int) -> str:
    return f"{sheet}, row {first}" if first == last else f"{sheet}, rows {first}–{last}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def parse_xlsx(path: Path) -> Parsed:
    import openpyxl

    _check_package(path, 64 << 20)
    handle = path.open("rb")  # a file object: openpyxl refuses a path without an Excel extension
    try:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:
        handle.close()  # openpyxl's errors for a damaged package vary (KeyError, ValueError, zip errors)
        raise Unindexable(f"damaged spreadsheet ({type(exc).__name__})") from None
    budget, sections = _Text(), list[Section]()
    try:
        for sheet in book.worksheets:
            rows = (
                (i, [_cell(v) for v in row[:200]])
                for i, row in enumerate(sheet.iter_rows(values_only=True), 1)
            )
            sections.extend(_sheet_sections(sheet.title, rows, budget))
            if budget.full():
                break
    finally:
        book.close()
        handle.close()
    return _require_text(Parsed(sections))


def _odf(path: Path) -> Any:
    from odf.opendocument import load

    _check_package(path, MAX_ODF_XML)
    try:
        return load(str(path))
    except Exception as exc:  # odfpy raises whatever its XML reader meets
        raise Unindexable(f"damaged OpenDocument file ({type(exc).__name__})") from None


def _odf_text(element: Any) -> str:
    """The text of an element, its line breaks, tabs and runs of spaces kept as such."""
    out: list[str] = []
    for node in element.childNodes:
        if node.nodeType == node.TEXT_NODE:
            out.append(str(node.data))
        elif node.qname[1] == "s":
            out.append(" " * int(node.getAttribute("c") or 1))
        elif node.qname[1] == "tab":
            out.append("\t")
        elif node.qname[1] == "line-break":
            out.append("\n")
        elif node.qname[1] not in ("annotation", "note"):
            out.append(_odf_text(node))
    return "".join(out)


def _repeat(element: Any, attribute: str) -> int:
    try:
        return max(1, int(element.getAttribute(attribute) or 1))
    except (TypeError, ValueError):
        return 1


def _ods_rows(table: Any) -> Iterator[tuple[int, list[str]]]:
    from odf.table import TableCell, TableRow

    number = 0
    for row in table.getElementsByType(TableRow):
        cells: list[str] = []
        for cell in row.getElementsByType(TableCell):
            value = " ".join(
                " ".join(_odf_text(p).split()) for p in cell.childNodes if p.qname[1] in ("p", "h")
            ).strip()
            times = _repeat(cell, "numbercolumnsrepeated")
            if not value and times > MAX_REPEAT:
                times = 1  # a run of empty cells to the sheet's edge
            cells.extend([value] * min(times, MAX_REPEAT))
            if len(cells) >= 200:
                break
        while cells and not cells[-1]:
            cells.pop()
        times = _repeat(row, "numberrowsrepeated")
        for _ in range(min(times, MAX_REPEAT) if cells else 1):
            number += 1
            yield number, cells
        number += times - (min(times, MAX_REPEAT) if cells else 1)


def parse_ods(path: Path) -> Parsed:
    from odf.table import Table

    document, budget, sections = _odf(path), _Text(), list[Section]()
    for table in document.spreadsheet.getElementsByType(Table):
        sections.extend(_sheet_sections(str(table.getAttribute("name") or "Sheet"), _ods_rows(table), budget))
        if budget.full():
            break
    return _require_text(Parsed(sections))


# --- slides ---------------------------------------------------------------------------------------------
def _slide(number: int, title: str, lines: list[str], budget: _Text) -> Section:
    text = "\n".join(line for line in lines if line.strip())
    budget.full(len(text))
    heading = f"Slide {number}: {title}" if title else f"Slide {number}"
    return Section(text, page=number, heading=heading)


def parse_pptx(path: Path) -> Parsed:
    import pptx

    _check_package(path, 64 << 20)
    try:
        deck = pptx.Presentation(str(path))
    except Exception as exc:
        raise Unindexable(f"damaged presentation ({type(exc).__name__})") from None
    budget, sections = _Text(), list[Section]()
    for number, slide in enumerate(deck.slides, 1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        lines: list[str] = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                lines.extend(p.text for p in shape.text_frame.paragraphs)
            if getattr(shape, "has_table", False):
                for row in shape.table.rows:
                    lines.append(" | ".join(c.text.strip() for c in row.cells if c.text.strip()))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                lines.append(f"Notes: {notes}")
        sections.append(_slide(number, title, lines, budget))
        if budget.full():
            break
    parsed = _require_text(Parsed(sections))
    parsed.pages = len(deck.slides)
    return parsed


def parse_odp(path: Path) -> Parsed:
    from odf.draw import Page
    from odf.text import P

    document, budget, sections = _odf(path), _Text(), list[Section]()
    pages = document.presentation.getElementsByType(Page)
    for number, page in enumerate(pages, 1):
        lines = [_odf_text(p) for p in page.getElementsByType(P)]
        title = next((line.strip() for line in lines if line.strip()), "")
        sections.append(_slide(number, title, lines, budget))
        if budget.full():
            break
    parsed = _require_text(Parsed(sections))
    parsed.pages = len(pages)
    return parsed


# --- text documents -------------------------------------------------------------------------------------
def parse_odt(path: Path) -> Parsed:
    document, budget, sections = _odf(path), _Text(), list[Section]()
    heading: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if lines:
            sections.append(Section("\n".join(lines), heading=heading))
            lines.clear()

    def walk(element: Any) -> None:
        nonlocal heading
        for node in element.childNodes:
            if budget.full():
                return
            kind = node.qname[1] if node.nodeType == node.ELEMENT_NODE else ""
            if kind == "h":
                flush()
                heading = " ".join(_odf_text(node).split()) or heading
                lines.append(heading or "")
            elif kind == "p":
                text = _odf_text(node).strip()
                if text:
                    lines.append(text)
                    budget.full(len(text))
            elif kind == "table-row":
                cells = [
                    " ".join(_odf_text(c).split()) for c in node.childNodes if c.qname[1] == "table-cell"
                ]
                if any(cells):
                    lines.append(" | ".join(c for c in cells if c))
            elif kind and kind not in ("annotation", "note", "tracked-changes"):
                walk(node)

    walk(document.text)
    flush()
    return _require_text(Parsed(sections))


def parse_rtf(path: Path) -> Parsed:
    from striprtf.striprtf import rtf_to_text

    raw = read_text(path, markup=4)  # control words and embedded pictures: about 4 bytes per character kept
    if not raw.lstrip().startswith("{\\rtf"):
        raise Unindexable("not an RTF document (it does not start with {\\rtf)")
    try:
        text = rtf_to_text(raw, errors="replace")
    except Exception as exc:  # striprtf's own errors on damaged groups
        raise Unindexable(f"damaged RTF document ({type(exc).__name__})") from None
    return _require_text(Parsed([Section(block) for block in _paragraph_blocks(text)]))


def _paragraph_blocks(text: str, size: int = 4000) -> list[str]:
    """Text cut at paragraph ends into blocks the chunker handles like a text file's."""
    blocks, current = [], ""
    for paragraph in text.split("\n"):
        if current and len(current) + len(paragraph) > size:
            blocks.append(current)
            current = ""
        current = f"{current}\n{paragraph}" if current else paragraph
    return [*blocks, current] if current else blocks


# --- Outlook messages -----------------------------------------------------------------------------------
def parse_msg(path: Path, depth: int = 0) -> Parsed:
    """An Outlook message: its headers and body, then each attachment parsed as its own type and cited
    inside the message. A `.msg` that is not an Outlook file (Tk's message catalogues are text) is read as
    what it is."""
    with path.open("rb") as file:
        if file.read(8) != b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            kind, what = sniff(path)
            if kind == ".txt":
                return parse_text(path)
            raise Unindexable(f"not an Outlook message ({what})")
    import extract_msg

    try:
        message = extract_msg.openMsg(str(path), delayAttachments=True)
    except Exception as exc:  # extract_msg raises its own errors for damaged or unusual files
        raise Unindexable(f"damaged or unsupported Outlook message ({type(exc).__name__})") from None
    try:
        return _msg_sections(message, depth)
    finally:
        message.close()


def _msg_sections(message: Any, depth: int) -> Parsed:
    subject = " ".join(str(getattr(message, "subject", "") or "").split()) or None
    headers = [
        f"{label}: {value}"
        for label, value in (
            ("From", getattr(message, "sender", None)),
            ("To", getattr(message, "to", None)),
            ("Cc", getattr(message, "cc", None)),
            ("Date", getattr(message, "date", None)),
            ("Subject", subject),
        )
        if value
    ]
    body = str(getattr(message, "body", "") or "").replace("\r\n", "\n").strip()
    if not body:
        html = getattr(message, "htmlBody", None)
        if html:
            from sealroom.core.ingest.parsers import html_to_sections

            body = "\n\n".join(s.text for s in html_to_sections(bytes(html).decode("utf-8", "replace")))
    attachments = list(getattr(message, "attachments", []) or [])
    names = [_attachment_name(a, i) for i, a in enumerate(attachments, 1)]
    if names:
        headers.append("Attachments: " + ", ".join(names))
    sections = [Section("\n".join(headers) + "\n\n" + body, heading=subject)]
    budget = _Text()
    budget.full(len(sections[0].text))
    with tempfile.TemporaryDirectory(prefix="sealroom-msg-") as scratch:
        for attachment, name in zip(attachments, names, strict=True):
            if budget.full():
                break
            data = getattr(attachment, "data", None)
            if hasattr(data, "attachments"):  # an attached message
                sections.extend(_attached_message(data, name, depth, budget))
            else:
                sections.extend(_file_sections(name, data, Path(scratch), budget))
    return _require_text(Parsed(sections))


def attached_files(files: list[tuple[str, bytes]], used: int) -> list[Section]:
    """The passages of files attached to a message (`used`: characters the message has produced)."""
    budget = _Text()
    budget.full(used)
    out: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="sealroom-mail-") as scratch:
        for name, data in files:
            if budget.full():
                break
            out.extend(
                _file_sections(
                    Path(name.replace("\\", "/")).name or "attachment", data, Path(scratch), budget
                )
            )
    return out


def _attached_message(message: Any, name: str, depth: int, budget: _Text) -> list[Section]:
    if depth + 1 >= MAX_DEPTH:
        return [
            Section(
                f"Attachment {name}: not indexed (a message this deep inside others is listed, not read)",
                heading=name,
            )
        ]
    return _cited_inside(name, _msg_sections(message, depth + 1), budget)


def _attachment_name(attachment: Any, n: int) -> str:
    name = str(getattr(attachment, "longFilename", None) or getattr(attachment, "shortFilename", None) or "")
    name = Path(name.replace("\\", "/")).name.strip()
    return name or f"attachment {n}"


def _file_sections(name: str, data: object, scratch: Path, budget: _Text) -> list[Section]:
    """An attached file's passages, headed 'name › heading' and paged as in the file itself; one that cannot
    be read is noted in a line of its own (the message is still indexed)."""
    try:
        if not isinstance(data, bytes) or not data:
            raise Unindexable("no content")
        file = scratch / f"{len(list(scratch.iterdir()))}-{name}"
        file.write_bytes(data)
        parsed = _parse_inside(file, max(1, _Budget.chars - budget.used) if _Budget.chars else 0)
    except Unindexable as why:
        return [Section(f"Attachment {name}: not indexed ({why})", heading=name)]
    except Exception as exc:  # a damaged attachment never fails its message
        return [
            Section(f"Attachment {name}: not indexed (cannot be read: {type(exc).__name__})", heading=name)
        ]
    return _cited_inside(name, parsed, budget)


def _cited_inside(name: str, parsed: Parsed, budget: _Text) -> list[Section]:
    out = []
    for section in parsed.sections:
        heading = f"{name} › {section.heading}" if section.heading else name
        out.append(Section(section.text, page=section.page, heading=heading))
        budget.full(len(section.text))
    return out


def _parse_inside(file: Path, max_chars: int) -> Parsed:
    """`parse` of a file inside the one being parsed, which keeps its own budget and part."""
    from sealroom.core.ingest.parsers import parse

    saved = (_Budget.chars, _Budget.cut, _Budget.part)
    try:
        return parse(file, max_chars)
    finally:
        cut = _Budget.cut
        _Budget.chars, _Budget.cut, _Budget.part = saved
        _Budget.cut = _Budget.cut or cut


PARSERS = {
    ".xlsx": parse_xlsx,
    ".xlsm": parse_xlsx,
    ".ods": parse_ods,
    ".pptx": parse_pptx,
    ".odp": parse_odp,
    ".odt": parse_odt,
    ".rtf": parse_rtf,
    ".msg": parse_msg,
}

__all__ = ["NO_TEXT", "PARSERS"]
