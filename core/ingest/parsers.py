"""Turn a file into located text: sections that each carry a page and/or a heading.

These functions run inside the parser subprocess (see parse_worker.py), never in the
engine process: PDF and Office parsers are untrusted code paths.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

#: Bump when parsing improves: files that failed or were skipped are then tried again.
PARSER_VERSION = "7"
#: Indexed files of these types are read again after an upgrade to this version, since their sections
#: changed (7: headings and file offsets of plain text and Markdown, h1-h6 sections of HTML).
REREAD_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".html", ".htm")


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str | None = None
    #: where `text` starts in the document's text, in characters: a text file's sections are slices of the
    #: file, so their chunks' offsets are the file's (a citation's line numbers are read from them)
    offset: int = 0


@dataclass
class Parsed:
    sections: list[Section]
    pages: int | None = None
    truncated: bool = False  # cut to the per-file budget

    def to_json(self) -> dict[str, Any]:
        return {
            "sections": [asdict(s) for s in self.sections],
            "pages": self.pages,
            "truncated": self.truncated,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Parsed:
        return Parsed(
            [Section(**s) for s in data["sections"]], data.get("pages"), data.get("truncated", False)
        )

    def within(self, max_chars: int) -> Parsed:
        """The leading sections up to `max_chars` of text (the last one cut): a huge file's budget."""
        kept: list[Section] = []
        used = 0
        for section in self.sections:
            if used + len(section.text) > max_chars:
                if max_chars - used > 0:
                    kept.append(replace(section, text=section.text[: max_chars - used]))
                return Parsed(kept, self.pages, truncated=True)
            kept.append(section)
            used += len(section.text)
        return self


#: A line among a page's first or last RUNNING_ZONE lines, the same (digits aside) on at least this share of
#: the pages, is a running header or footer (a title, a date, "page 4 of 105"): noise glued into quotes.
RUNNING_ZONE = 2
RUNNING_SHARE = 0.5
RUNNING_MIN_PAGES = 4


def _running_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).lower()


def without_running_lines(parsed: Parsed) -> Parsed:
    """The pages without their running headers and footers (lines repeated at the top or bottom of most pages)."""
    paged = [s for s in parsed.sections if s.page is not None]
    if len(paged) < RUNNING_MIN_PAGES:
        return parsed

    def zone(lines: list[str]) -> list[int]:
        """Indices of the first and last RUNNING_ZONE non-blank lines."""
        filled = [i for i, line in enumerate(lines) if line.strip()]
        return sorted(set(filled[:RUNNING_ZONE] + filled[-RUNNING_ZONE:]))

    pages = [(s, s.text.splitlines()) for s in paged]
    seen: dict[str, int] = {}
    for _, lines in pages:
        for key in {_running_key(lines[i]) for i in zone(lines)}:
            seen[key] = seen.get(key, 0) + 1
    running = {k for k, n in seen.items() if n >= max(RUNNING_MIN_PAGES, RUNNING_SHARE * len(paged))}
    if not running:
        return parsed
    cleaned = {}
    for section, lines in pages:
        drop = {i for i in zone(lines) if _running_key(lines[i]) in running}
        text = "\n".join(line for i, line in enumerate(lines) if i not in drop)
        cleaned[id(section)] = Section(text, section.page, section.heading)
    return Parsed([cleaned.get(id(s), s) for s in parsed.sections], parsed.pages, parsed.truncated)


class Unindexable(Exception):
    """The file is fine but has nothing we can index (encrypted, no text): status `skipped`."""


class NoTextAfterOcr(Unindexable):
    """Every page was read by OCR and none held text."""


class NeedsOcr(Unindexable):
    """A first pass (`_Budget.ocr == LATER`) met a scanned page: the file is parsed again, with OCR, once
    the text documents are indexed."""


#: `_Budget.ocr` for a first pass: text layers only; a file with scanned pages raises NeedsOcr
LATER = "later"


NO_TEXT = "no extractable text"
NO_PDF_TEXT = "no extractable text (scanned or image-only pages; OCR is not available)"


def _require_text(parsed: Parsed, reason: str = NO_TEXT) -> Parsed:
    parsed.sections = [s for s in parsed.sections if s.text.strip()]
    if not parsed.sections:
        raise Unindexable(reason)
    return parsed


OBJECT_MARK = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b")
PAGE_TYPE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def rebuild_xref(raw: bytes) -> bytes | None:
    """A PDF whose cross-reference table or page tree is damaged, with a fresh index appended.

    The standard recovery: the objects are usually all still there, only the index to
    them is wrong. Objects are found by their `N G obj` markers (the last one wins, as in
    an incremental update); a new page tree lists every /Type /Page object in file order,
    under a new catalog, so a missing /Pages root does not lose the pages.
    """
    offsets: dict[int, tuple[int, int]] = {}
    pages: list[tuple[int, int]] = []
    for match in OBJECT_MARK.finditer(raw):
        number, generation = int(match.group(1)), int(match.group(2))
        offsets[number] = (match.start(), generation)
        head = raw[match.end() : match.end() + 8192].split(b"endobj", 1)[0].split(b"stream", 1)[0]
        if PAGE_TYPE.search(head):
            pages.append((number, generation))
    if not pages:
        return None
    tree, catalog = max(offsets) + 1, max(offsets) + 2
    kids = b" ".join(b"%d %d R" % page for page in dict.fromkeys(pages))
    extra = b"\n%d 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n" % (
        tree,
        kids,
        len(set(pages)),
    ) + b"%d 0 obj\n<< /Type /Catalog /Pages %d 0 R >>\nendobj\n" % (catalog, tree)
    offsets[tree] = (len(raw) + 1, 0)
    offsets[catalog] = (len(raw) + extra.index(b"%d 0 obj" % catalog), 0)
    size = catalog + 1
    rows = [b"0000000000 65535 f \n"]
    for number in range(1, size):
        offset, generation = offsets.get(number, (0, 65535))
        rows.append(b"%010d %05d %s \n" % (offset, generation, b"n" if number in offsets else b"f"))
    body = raw + extra
    table = b"xref\n0 %d\n" % size + b"".join(rows)
    trailer = b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, catalog, len(body))
    return body + table + trailer


def parse_pdf(path: Path) -> Parsed:
    """PDFium reads the text (pypdfium2: 12x less CPU than pypdf on the sample PDFs, and it keeps
    mathematical symbols and ligatures as the characters they are). A file PDFium cannot open is read
    by pypdf, which repairs more kinds of damage, and so is one in Hebrew or Arabic script (PDFium gives
    it in visual order, reversed) or one where PDFium finds no text; one that needs a password is
    skipped. A file PDFium cannot open is read whole by the first of the workers sharing it: pypdf
    repairs the whole file before it reads a page, and each worker repeating that cost more than it
    saved (the sample's damaged 3-page file: 0.60 CPU-s in two shares, 0.45 in one)."""
    try:
        import pypdfium2
    except ImportError:  # not installed: pypdf reads every PDF
        return _parse_pdf_pypdf(path)
    try:
        document = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        if exc.err_code == PDFIUM_PASSWORD:
            raise Unindexable("encrypted (password required)") from None
        k, n = _Budget.part
        if n > 1:  # shared between workers: pypdf's repair of the whole file is done once, by the first
            if k:
                return Parsed([], pages=None)
            _Budget.part = (0, 1)
        return _parse_pdf_pypdf(path)
    try:
        parsed = _parse_pdf_pdfium(document)
    except (NoTextAfterOcr, NeedsOcr):
        raise
    except (pypdfium2.PdfiumError, Unindexable):  # a page PDFium could not read, or no text: pypdf tries
        return _parse_pdf_pypdf(path)
    finally:
        document.close()
    if any(RIGHT_TO_LEFT.search(section.text) for section in parsed.sections):
        return _parse_pdf_pypdf(path)  # PDFium gives right-to-left script in visual order, reversed
    return parsed


#: pypdfium2's error code when a document needs a password (FPDF_ERR_PASSWORD); an empty user
#: password ("protected" files that only restrict printing) is tried by PDFium itself
PDFIUM_PASSWORD = 4
#: Hebrew and Arabic letters (with their presentation forms)
RIGHT_TO_LEFT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
#: PDFium marks a word hyphenated at a line break with U+FFFE (or U+0002), joining its halves
PDFIUM_SOFT_HYPHEN = re.compile("[\ufffe\x02]")


def _pdfium_outline_by_page(document: Any) -> dict[int, str]:
    """The first outline (bookmark) title that starts on each page."""
    found: dict[int, str] = {}
    try:
        for bookmark in document.get_toc():
            destination = bookmark.get_dest()
            index = destination.get_index() if destination is not None else None
            title = (bookmark.get_title() or "").strip()
            if index is not None and title and index + 1 not in found:
                found[index + 1] = title
    except Exception:
        return found
    return found


def _parse_pdf_pdfium(document: Any) -> Parsed:
    """Each page's text layer; a page without one (a scan) is read by OCR when it can run here."""
    from sealroom.core.ingest import ocr

    scanned: dict[int, float] = {}  # page -> OCR confidence
    can_ocr = bool(_Budget.ocr) and not ocr.available()

    def text_of(number: int) -> str:
        page = document[number - 1]
        try:
            textpage = page.get_textpage()
            try:
                raw = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()
        text = PDFIUM_SOFT_HYPHEN.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
        if can_ocr and len(text.strip()) < ocr.MIN_PAGE_CHARS and len(scanned) < ocr.MAX_PAGES:
            if _Budget.ocr == LATER:  # the text documents first: this file comes back for its OCR pass
                raise NeedsOcr(f"waiting for OCR (page {number} is a scan; text documents are indexed first)")
            read = ocr.read(ocr.pdf_page_image(document, number - 1))
            _Budget.progress()
            if len(read.text.strip()) > len(text.strip()):
                scanned[number] = read.confidence
                return read.text
        return text

    try:
        parsed = _pdf_pages(len(document), _pdfium_outline_by_page(document), text_of)
    except NeedsOcr:
        raise
    except Unindexable:
        if can_ocr:  # every page OCR'd and still no text: say so, not that OCR is missing
            raise NoTextAfterOcr(
                "no text found by OCR (pictures, or blank or unreadable scanned pages)"
            ) from None
        raise
    for section in parsed.sections:
        if section.page in scanned:
            section.heading = ocr.heading(scanned[section.page], section.heading)
    return parsed


def _pdf_pages(pages: int, headings: dict[int, str], text_of: Callable[[int], str]) -> Parsed:
    """One section per page (`text_of(number)`, from 1), under the last outline title met."""
    current: str | None = None
    sections = []
    used = 0
    k, n = _Budget.part
    for number in range(1, pages + 1):
        if _Budget.chars and used > _Budget.chars:
            _Budget.cut = True  # the pages after the budget are not read at all
            break
        current = headings.get(number, current)
        if (number - 1) % n != k:
            continue  # another worker reads this page
        sections.append(Section(_readable(text_of(number)), page=number, heading=current))
        used += len(sections[-1].text)
    parsed = Parsed(sections, pages=pages)
    if n > 1:  # one part of several may hold no text; the pool judges the whole
        parsed.sections = [s for s in sections if s.text.strip()]
        return parsed
    return _require_text(parsed, NO_PDF_TEXT)


def _parse_pdf_pypdf(path: Path) -> Parsed:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    _Budget.cut = False  # read again from the start (after PDFium, when it falls back)

    reader = PdfReader(path)
    if not reader.is_encrypted:
        try:
            len(reader.pages)
        except PdfReadError:
            repaired = rebuild_xref(path.read_bytes())
            if repaired is None:
                raise
            reader = PdfReader(io.BytesIO(repaired))
    else:
        try:
            opened = bool(reader.decrypt(""))  # many "protected" PDFs only restrict printing
        except Exception:
            opened = False
        if not opened:
            raise Unindexable("encrypted (password required)")
    return _pdf_pages(
        len(reader.pages),
        _pdf_outline_by_page(reader),
        lambda number: reader.pages[number - 1].extract_text() or "",
    )


def _readable(text: str) -> str:
    """Empty when most characters are U+FFFD: glyphs whose font maps to no text are noise, not content."""
    visible = [c for c in text if not c.isspace()]
    return "" if visible and visible.count("\ufffd") > len(visible) / 2 else text


def _pdf_outline_by_page(reader: Any) -> dict[int, str]:
    """The first outline (bookmark) title that starts on each page."""
    found: dict[int, str] = {}

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                page = reader.get_destination_page_number(item) + 1
            except Exception:
                continue
            title = str(getattr(item, "title", "") or "").strip()
            if title and page not in found:
                found[page] = title

    try:
        walk(reader.outline)
    except Exception:
        return {}
    return found


#: Unpacked bytes of an Office file's parts at most: a 200 MB document.xml (a compression bomb, or a
#: document far over the text budget) would take gigabytes to parse. Declared sizes cannot lie low:
#: the unzipper never returns more than a part declares.
MAX_UNPACKED = 64 << 20


def _unpacked_size(path: Path) -> int:
    import zipfile

    with zipfile.ZipFile(path) as package:
        return sum(info.file_size for info in package.infolist() if info.filename.endswith(".xml"))


def parse_docx(path: Path) -> Parsed:
    import docx

    unpacked = _unpacked_size(path)
    if unpacked > MAX_UNPACKED:
        raise Unindexable(
            f"too large when unpacked ({unpacked / 1e6:.0f} MB of XML; the limit is "
            f"{MAX_UNPACKED / 1e6:.0f} MB): a compression bomb, or far more text than the per-file budget"
        )
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    sections: list[Section] = []
    heading: str | None = None
    page = 1
    lines: list[str] = []

    def flush() -> None:
        if lines:
            sections.append(Section("\n".join(lines), page=page, heading=heading))
            lines.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = (block.style.name if block.style is not None else "") or ""
            text = block.text.strip()
            if block.contains_page_break:
                flush()
                page += len(block.rendered_page_breaks) or 1
            if style.startswith("Heading") or style == "Title":
                flush()
                heading = text or heading
            if text:
                lines.append(text)
        elif isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells]
                deduped = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                if deduped:
                    lines.append(" | ".join(deduped))
    flush()
    has_breaks = any(s.page and s.page > 1 for s in sections)
    if not has_breaks:  # Word did not record page breaks: a page number would be a guess
        for s in sections:
            s.page = None
    return _require_text(Parsed(sections, pages=page if has_breaks else None))


BINARY = "binary content, not text (the file is named like a text file)"


def looks_binary(raw: bytes) -> bool:
    """NUL bytes, or mostly bytes that no text encoding uses, in the first 8 KB (UTF-16 excepted)."""
    head = raw[:8192]
    if not head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    try:
        head.decode("utf-8")
        return controls / len(head) > 0.1
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a character cut by the 8 KB window
            return controls / len(head) > 0.1
    undecodable = sum(1 for b in head if b >= 0x80)
    return (controls + undecodable) / len(head) > 0.3


class _Budget:
    """How much text one parse may produce (set by `parse`; the parser process does one file at a time)."""

    chars = 0  # 0: no limit
    cut = False  # set when the file held more than was read
    ocr: bool | str = True  # scanned pages and images read by OCR (the setting `ocr`); LATER: a first pass
    progress: Callable[[], None] = staticmethod(lambda: None)  # a slow step done (an OCR'd page): not hung
    part = (0, 1)  # (k, n): read only the pages p with (p - 1) % n == k (a large PDF parsed by n workers)


def read_text(path: Path, markup: int = 1) -> str:
    """The file's text, at most about the budget's worth (`markup`: bytes of file per character kept)."""
    limit = _Budget.chars * 4 * markup if _Budget.chars else -1
    with path.open("rb") as file:
        raw = file.read(limit)
        if limit > 0 and file.read(1):
            _Budget.cut = True
            raw = _whole_characters(raw)
    if looks_binary(raw):
        raise Unindexable(BINARY)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw[: len(raw) // 2 * 2].decode("utf-16", errors="replace")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _whole_characters(raw: bytes) -> bytes:
    """`raw` without a UTF-8 character cut at its end (the read stopped inside it)."""
    for back in range(1, 4):
        if len(raw) >= back and raw[-back] & 0xC0 == 0xC0:  # a lead byte `back` from the end
            need = 2 if raw[-back] < 0xE0 else 3 if raw[-back] < 0xF0 else 4
            return raw[:-back] if need > back else raw
        if len(raw) >= back and raw[-back] < 0x80:
            return raw
    return raw


MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: A line that underlines the one above it as a heading ("Title\n=====", as in Markdown and reStructuredText)
UNDERLINE = re.compile(r"^[ \t]*([=\-~^*#])\1{2,}[ \t]*$")
#: A numbered heading of a plain-text document: "3.2.  Message Syntax" (RFCs), "4. Conveying Verbatim
#: Copies." (GPL 3), "Appendix A. Collected ABNF", "Section 12 Termination"; or a numbered paragraph
#: whose first sentence is such a title ("2. Grant of Copyright License. Subject to ...", Apache 2.0)
NUMBERED_HEADING = re.compile(
    r"^([ \t]{0,8})((?:Appendix|Annex|Section|Chapter|Part|Article)[ \t]+[A-Z0-9]{1,4}\.?"
    r"|\d{1,3}\.(?:\d{1,3}\.?){0,4}|\d{1,3}(?:\.\d{1,3}){1,4}\.?)[ \t]+(\S.*)$"
)
#: Characters a plain-text heading does not hold: code, markup, addresses, table columns
NOT_HEADING = re.compile(r"[(){}\[\]<>=;|@\\`*_$]|\S {3,}\S|https?:")
#: Words a title leaves in lower case ("Grant of Copyright License")
SMALL_WORD = re.compile(
    r"(?:a|an|and|as|at|by|for|from|in|into|of|on|or|the|to|under|upon|via|vs|with|without|this|that|its)"
)


def parse_text(path: Path) -> Parsed:
    """A text file as slices of its text (each Section's `offset` says where it starts), cut at its
    headings: Markdown's, or a plain-text document's numbered, underlined, ALL-CAPS or centred titles."""
    text = read_text(path)
    lines = _lines_at(text)
    markdown = path.suffix.lower() in (".md", ".markdown")
    marks = _markdown_headings(lines) if markdown else _text_headings(lines)
    sections = []
    starts = [(0, None), *marks]
    for (at, heading), (until, _) in zip(starts, [*marks, (len(text), None)], strict=True):
        if until > at:
            sections.append(Section(text[at:until], heading=heading, offset=at))
    return _require_text(Parsed(sections))


def _lines_at(text: str) -> list[tuple[int, str]]:
    """Each line of `text` (split at "\n", without its "\r") with the offset it starts at."""
    out, at = [], 0
    for line in text.split("\n"):
        out.append((at, line.rstrip("\r")))
        at += len(line) + 1
    return out


def _markdown_headings(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(offset, title) of each heading: "# Title" lines, and a one-line paragraph underlined with === or
    ---; never inside a fenced code block."""
    marks: list[tuple[int, str]] = []
    fence = ""
    for i, (at, line) in enumerate(lines):
        opened = MD_FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened.group(1)
            continue
        match = MD_HEADING.match(line)
        if match and match.group(1).strip():
            marks.append((at, match.group(1).strip()))
        elif _underlined(lines, i, "=-"):
            marks.append((at, " ".join(line.split())))
    return marks


def _blank(lines: list[tuple[int, str]], i: int) -> bool:
    """Whether line `i` is blank or outside the text (a form feed is blank)."""
    return not 0 <= i < len(lines) or not lines[i][1].strip()


def _underlined(lines: list[tuple[int, str]], i: int, marks: str) -> bool:
    """Whether line `i` is a one-line title underlined by the next line (about as long as the title)."""
    if i + 1 >= len(lines) or _blank(lines, i) or UNDERLINE.match(lines[i][1]):
        return False
    under = UNDERLINE.match(lines[i + 1][1])
    title, rule = lines[i][1].strip(), lines[i + 1][1].strip()
    above = _blank(lines, i - 1) or lines[i - 1][1].strip() == rule  # an overline of the same rule
    return (
        under is not None
        and under.group(1) in marks
        and above
        and len(title) <= 80
        and 0.6 * len(title) <= len(rule) <= 1.5 * len(title) + 2
        and any(c.isalpha() for c in title)
    )


def _text_width(lines: list[tuple[int, str]]) -> int:
    """The width a plain text is wrapped at: the longest line length that 5 % of the lines reach."""
    lengths = sorted((len(line.rstrip()) for _, line in lines if line.strip()), reverse=True)
    return lengths[min(len(lengths) - 1, len(lengths) // 20)] if lengths else 0


def _text_headings(lines: list[tuple[int, str]]) -> list[tuple[int, str | None]]:
    """(offset, title) of a plain text's headings: a block of one or two lines on their own (blank lines
    around) that is numbered ("3.2. Title"), in capitals ("NO WARRANTY") or centred ("Preamble"); a line
    underlined with a rule (=== or ---); a numbered paragraph that opens with a title ("2. Grant of
    Copyright License. Subject to ..."). A numbered paragraph without a title ends the heading of the number
    before it (title None: the heading above that). Paragraphs, list items, a letter's closing lines are
    not headings."""
    width = _text_width(lines)
    marks: list[tuple[int, str | None]] = []
    parent: str | None = None  # the last heading that is not numbered
    numbered: list[tuple[int, int, str]] = []  # the open numbered headings: (indent, depth, title)
    for i, (at, line) in enumerate(lines):
        underlined = _underlined(lines, i, "=-~^*#")
        if _blank(lines, i) or not (_blank(lines, i - 1) or underlined):
            continue
        number = NUMBERED_HEADING.match(line)
        title: str | None
        if underlined:
            title = " ".join(line.split())
            title = title if title[0].isupper() or title[0].isdigit() else None
        elif _blank(lines, i + 1):
            title = _standalone_title(line, width)
        elif _blank(lines, i + 2) and not number and not NUMBERED_HEADING.match(lines[i + 1][1]):
            pair = [_standalone_title(line, width), _standalone_title(lines[i + 1][1], width)]
            title = " — ".join(t for t in pair if t) if all(pair) else None
        else:
            title = None
        if number:
            indent, depth = len(number.group(1).expandtabs()), number.group(2).rstrip(".").count(".") + 1
            lead = title or _leading_title(number.group(3))
            ended = [n for n in numbered if n[1] >= depth and n[0] >= indent]
            numbered = [n for n in numbered if n not in ended]
            if lead:
                heading = lead if title else f"{number.group(2)} {lead}"
                marks.append((at, heading))
                numbered.append((indent, depth, heading))
            elif ended:  # the next item of a list a heading was one of: back to the heading above
                marks.append((at, numbered[-1][2] if numbered else parent))
        elif title:
            marks.append((at, title))
            parent, numbered = title, []
    return marks


def _titled(words: list[str], lower: int = 0) -> bool:
    """Whether words read as a title: each but the small ones (and `lower` others) starts with a capital."""
    small = sum(1 for w in words if w[:1].islower() and not SMALL_WORD.fullmatch(w))
    return bool(words) and words[0][:1].isupper() and small <= lower


def _leading_title(text: str) -> str | None:
    """The title a numbered paragraph opens with: its first sentence, or its whole first line, when that is
    a short title ("Grant of Copyright License.")."""
    found = re.match(r"(.+?\.)(?:\s|$)", text)
    lead = (found.group(1) if found else text).strip()
    words = lead.rstrip(".:").split()
    if len(words) > 10 or len(lead) > 72 or NOT_HEADING.search(lead) or not _titled(words):
        return None
    return lead


def _standalone_title(line: str, width: int) -> str | None:
    """The title a line on its own is, or None when it reads as text."""
    title = " ".join(line.split())
    if not 2 <= len(title) <= 72 or title[-1] in ",;!?" or not any(c.isalpha() for c in title):
        return None
    numbered = NUMBERED_HEADING.match(line)
    if numbered:
        rest = numbered.group(3).strip()
        sentences = re.search(r"[a-z]{2}\. [A-Z]", rest) or rest.endswith("..")
        words = rest.rstrip(".").split()
        if not sentences and rest[-1] != ":" and not NOT_HEADING.search(rest) and len(words) <= 10:
            return title if _titled(words, lower=1) else None  # "3.2. Message syntax", not "5. Run it now."
        return None
    if NOT_HEADING.search(line.strip()) or not title[0].isalnum():
        return None
    letters = [c for c in title if c.isalpha()]
    if len(letters) >= 4 and all(c.isupper() for c in letters) and len(title.split()) <= 12:
        return title.rstrip(":")
    indent = len(line) - len(line.lstrip(" "))
    right = width - len(line.rstrip())
    if (
        indent >= 10
        and abs(indent - right) <= max(6, indent // 2)
        and title[0].isupper()
        and len(title.split()) <= 10
        and title[-1] not in ".:"
    ):
        return title
    return None


class _HtmlText(HTMLParser):
    SKIP: ClassVar[set[str]] = {"script", "style", "noscript", "template", "head", "nav", "footer"}
    # page furniture, not content: site navigation, footers (ARIA roles; Sphinx's and DocBook's classes)
    SKIP_ROLES: ClassVar[set[str]] = {"navigation", "contentinfo", "search"}
    SKIP_CLASSES: ClassVar[set[str]] = {"footer", "navheader", "navfooter", "sphinxsidebar", "related"}
    BLOCK: ClassVar[set[str]] = {
        "p",
        "div",
        "br",
        "li",
        "section",
        "article",
        "table",
        "caption",
        "dl",
        "dt",
        "dd",
        "ul",
        "ol",
        "pre",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    }
    HEAD: ClassVar[set[str]] = {"h1", "h2", "h3", "h4", "h5", "h6"}
    CELL: ClassVar[set[str]] = {"td", "th"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self._parts: list[str] = []
        self._heading: str | None = None
        self._in_heading: list[str] | None = None
        self._skip: list[list[Any]] = []  # [tag, depth] of the element being skipped
        self._cells = 0  # cells so far in the table row
        self._tables = 0  # depth of open tables: their rows are lines, one after another
        self._in_cell = False
        self.chars = 0  # text collected so far

    def _skipped(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in self.SKIP:
            return True
        values = dict(attrs)
        classes = set((values.get("class") or "").split())
        return (values.get("role") or "") in self.SKIP_ROLES or bool(classes & self.SKIP_CLASSES)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            if tag == self._skip[-1][0]:
                self._skip[-1][1] += 1
            return
        if self._skipped(tag, attrs):
            self._skip.append([tag, 1])
            return
        if tag in self.HEAD:
            self._flush()
            self._in_heading = []
        if tag in self.BLOCK:
            self._parts.append("\n")
        if tag == "table":
            self._tables += 1
        elif tag == "tr":
            self._cells = 0
        elif tag in self.CELL:
            if self._cells:
                self._parts.append(" | ")  # a row's cells stay apart, on one line
            self._cells += 1
            self._in_cell = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skip and tag in self.BLOCK:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1][0]:
                self._skip[-1][1] -= 1
                if self._skip[-1][1] == 0:
                    self._skip.pop()
            return
        if tag in self.HEAD and self._in_heading is not None:
            heading = "".join(self._in_heading).replace("\u00b6", "")  # Sphinx's permalink mark
            self._heading = " ".join(heading.split()) or self._heading
            self._in_heading = None
        if tag in self.BLOCK:
            self._parts.append("\n")
        if tag == "table":
            self._tables = max(0, self._tables - 1)
        elif tag == "tr":
            self._parts.append("\n")
        elif tag in self.CELL:
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._skip or (self._tables and not self._in_cell and not data.strip()):
            return  # the layout's whitespace between a table's rows and cells
        if self._in_heading is not None:
            self._in_heading.append(data)
        self._parts.append(data)
        self.chars += len(data)

    def _flush(self) -> None:
        text = re.sub(r"[ \t]+", " ", "".join(self._parts)).replace("\u00b6", "")
        text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
        if text:
            self.sections.append(Section(text, heading=self._heading))
        self._parts = []

    def close(self) -> None:
        super().close()
        self._flush()


def html_to_sections(html: str) -> list[Section]:
    """The text of an HTML document, fed in blocks so that parsing stops once the budget is met."""
    parser = _HtmlText()
    block = 1 << 20
    for start in range(0, len(html), block):
        if _Budget.chars and parser.chars > _Budget.chars:
            _Budget.cut = True
            break
        parser.feed(html[start : start + block])
    parser.close()
    return parser.sections


def parse_html(path: Path) -> Parsed:
    return _require_text(Parsed(html_to_sections(read_text(path, markup=4))))


def parse_csv(path: Path) -> Parsed:
    text = read_text(path)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096])
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    header = next(rows, None)
    if not header:
        raise Unindexable(NO_TEXT)
    lines: list[str] = []
    used = 0
    for row in rows:  # row by row: a huge table stops at the budget instead of being held whole
        if _Budget.chars and used > _Budget.chars:
            _Budget.cut = True
            break
        line = "; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip())
        if line:
            lines.append(line)
            used += len(line) + 1
    return _require_text(Parsed([Section("\n".join(lines) or " | ".join(header))]))


def parse_eml(path: Path) -> Parsed:
    """A message's headers and body, its attached messages, and each attached file parsed as its own type
    and cited inside the message ("mail.eml › report.pdf", page as the attachment's)."""
    from sealroom.core.ingest.office import attached_files

    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    sections: list[Section] = []
    files: list[tuple[str, bytes]] = []
    _eml_sections(message, sections, files)
    return _require_text(Parsed(sections + attached_files(files, sum(len(s.text) for s in sections))))


def _own_parts(message: Any) -> list[Any]:
    """The parts of a message, not descending into attached messages (each is parsed once, by recursion).

    `Message.walk()` would also visit every part inside each attached message: with nesting,
    parts were parsed 2^depth times.
    """
    parts, stack = [], [message]
    while stack:
        part = stack.pop()
        parts.append(part)
        if part.is_multipart() and (part is message or part.get_content_type() != "message/rfc822"):
            stack.extend(reversed(list(part.iter_parts())))
    return parts


def _eml_sections(message: Any, out: list[Section], files: list[tuple[str, bytes]]) -> None:
    subject = str(message.get("subject", "") or "").strip() or None
    header_lines = [
        f"{k}: {message.get(k)}" for k in ("From", "To", "Cc", "Date", "Subject") if message.get(k)
    ]
    bodies: list[str] = []
    attachments: list[str] = []
    for part in _own_parts(message):
        if part is not message and part.get_content_type() == "message/rfc822":
            for inner in part.iter_parts():
                _eml_sections(inner, out, files)
            continue
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment":
            attachments.append(str(filename or part.get_content_type()))
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                files.append((str(filename or f"attachment {len(attachments)}"), payload))
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        try:
            content = part.get_content()
        except Exception:  # undecodable charset: keep what bytes we can
            payload = part.get_payload(decode=True) or b""
            content = payload.decode("latin-1") if isinstance(payload, bytes) else str(payload)
        if not isinstance(content, str):
            continue
        if ctype == "text/html":
            content = "\n\n".join(s.text for s in html_to_sections(content))
        bodies.append(content.strip())
    if attachments:
        header_lines.append("Attachments: " + ", ".join(attachments))
    text = "\n".join(header_lines) + "\n\n" + "\n\n".join(b for b in bodies if b)
    out.insert(0, Section(text.strip(), heading=subject))


PARSERS: dict[str, Callable[[Path], Parsed]] = {
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".txt": parse_text,
    ".md": parse_text,
    ".markdown": parse_text,
    ".html": parse_html,
    ".htm": parse_html,
    ".csv": parse_csv,
    ".eml": parse_eml,
}


IMAGES = (  # read by OCR
    (b"\x89PNG\r\n\x1a\n", ".png", "PNG image"),
    (b"\xff\xd8\xff", ".jpg", "JPEG image"),
    (b"II*\x00", ".tif", "TIFF image"),
    (b"MM\x00*", ".tif", "TIFF image"),
)
#: What a file is, from its first bytes, when its name does not say (no or an unknown extension)
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF image"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!", "RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"OggS", "audio or video"),
    (b"ID3", "MP3 audio"),
    (b"SQLite format 3\x00", "SQLite database"),
)
ZIP_KINDS = (  # a ZIP's members say which office format it is
    ("word/document.xml", ".docx", "Word document"),
    ("xl/workbook.xml", ".xlsx", "Excel workbook"),
    ("ppt/presentation.xml", ".pptx", "PowerPoint presentation"),
)
OPENDOCUMENT = {  # an OpenDocument package's `mimetype` member
    b"application/vnd.oasis.opendocument.text": (".odt", "OpenDocument text"),
    b"application/vnd.oasis.opendocument.spreadsheet": (".ods", "OpenDocument spreadsheet"),
    b"application/vnd.oasis.opendocument.presentation": (".odp", "OpenDocument presentation"),
}
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.I | re.S)
EMAIL_HEADER = re.compile(
    rb"(?:(?:Return-Path|Received|From|To|Subject|Date|Message-ID|MIME-Version):[^\n]*\r?\n)+"
)


def sniff(path: Path) -> tuple[str | None, str]:
    """For a file whose name does not say what it is: the PARSERS key to read it with (None: no parser
    reads it) and what it is, judged by its first bytes."""
    with path.open("rb") as file:
        head = file.read(8192)
    if not head:
        return None, "empty file"
    if head.startswith(b"%PDF-"):
        return ".pdf", "PDF document"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(OLE):
        return _ole_kind(path)
    if head.startswith(b"{\\rtf"):
        return ".rtf", "RTF document"
    for magic, kind, what in IMAGES:
        if head.startswith(magic):
            return kind, what
    for magic, what in MAGIC:
        if head.startswith(magic):
            return None, what
    if looks_binary(head):
        return None, "binary data"
    if HTML_START.match(head):
        return ".html", "HTML page"
    if EMAIL_HEADER.match(head) and re.search(rb"^(?:From|Subject):", head, re.M):
        return ".eml", "e-mail message"
    return ".txt", "text"


def _zip_kind(path: Path) -> tuple[str | None, str]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist()[:5000])
            mimetype = archive.read("mimetype")[:100].strip() if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None, "damaged ZIP archive"
    for member, kind, what in ZIP_KINDS:
        if member in names:
            return kind, what
    if mimetype in OPENDOCUMENT:
        return OPENDOCUMENT[mimetype]
    return None, "ZIP archive"


def _ole_kind(path: Path) -> tuple[str | None, str]:
    """An OLE compound file: an Outlook message has a properties stream; the rest are Office 97-2003 files."""
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            if ole.exists("__properties_version1.0"):
                return ".msg", "Outlook message"
    except Exception:  # olefile's errors for damaged files vary
        return None, "damaged Office 97-2003 file"
    return None, "Office 97-2003 document (.doc, .xls, .ppt); save it as .docx, .xlsx or .pptx to index it"


def parser_for(path: Path) -> tuple[str | None, str]:
    """The PARSERS key for `path`: by its extension when known, else by its content (`sniff`)."""
    suffix = path.suffix.lower()
    return (suffix, suffix) if suffix in PARSERS else sniff(path)


def parse_image(path: Path) -> Parsed:
    """An image file (a TIFF: each of its pages) read by OCR, each page cited as a page."""
    from sealroom.core.ingest import ocr

    why = ocr.available() if _Budget.ocr else "OCR is turned off"
    if why:
        raise Unindexable(f"image ({why})")
    sections, used, pages = [], 0, 0
    try:
        for pages, image in enumerate(ocr.image_pages(path), 1):
            if _Budget.chars and used > _Budget.chars:
                _Budget.cut = True
                break
            read = ocr.read(image)
            _Budget.progress()
            if read.text:
                sections.append(Section(read.text, page=pages, heading=ocr.heading(read.confidence)))
                used += len(read.text)
    except (ocr.OcrUnavailable, TimeoutError):
        raise
    except ImportError as exc:  # an installation without Pillow or pytesseract: not the image's fault
        raise ocr.OcrUnavailable(f"OCR is not available: {exc.name or 'a library'} is missing") from None
    except Exception as exc:  # PIL's errors for damaged or bomb images vary
        if "too large" in str(exc) or type(exc).__name__ == "DecompressionBombError":
            raise Unindexable(f"image too large to read (more than {ocr.MAX_PIXELS:,} pixels)") from None
        if not sections:
            raise Unindexable(f"damaged image ({type(exc).__name__})") from None
        _Budget.cut = True  # the pages read so far are kept
    if pages >= ocr.MAX_PAGES:
        _Budget.cut = True
    return _require_text(Parsed(sections, pages=pages), "no text found by OCR (a photo, or a blank page)")


def parse(path: Path, max_chars: int = 0, part: tuple[int, int] = (0, 1), pdfium: bool = True) -> Parsed:
    """The file's sections; with `max_chars`, about that much text at most (then `truncated`).
    With `part` (k, n) only every n-th page of a PDF from page k + 1 (several workers share one file).
    `pdfium=False` reads a PDF with pypdf alone (after PDFium took its process down on that file)."""
    kind, what = parser_for(path)
    if kind is None:
        raise Unindexable(f"unsupported type ({what})")
    parser = PARSERS[kind]
    if parser is parse_pdf and not pdfium:
        parser = _parse_pdf_pypdf
    _Budget.chars, _Budget.cut, _Budget.part = max_chars, False, part
    try:
        parsed = parser(path)
    finally:
        _Budget.chars, _Budget.part = 0, (0, 1)
    if _Budget.cut:
        parsed.truncated = True
    return parsed.within(max_chars) if max_chars else parsed


from sealroom.core.ingest import office  # noqa: E402 - its parsers build on this module's

#: Image files, read by OCR (core/ingest/ocr.py)
IMAGE_SUFFIXES = frozenset([".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"])
PARSERS.update(office.PARSERS)
PARSERS.update(dict.fromkeys(sorted(IMAGE_SUFFIXES), parse_image))
SUPPORTED_SUFFIXES = frozenset(PARSERS)
