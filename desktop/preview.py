"""The source pane: a cited passage, highlighted in the text around it, under its file and place (page,
heading, lines), which stay in view above the text while it scrolls."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.protocols import Passage

# Viewers that can open a PDF at a page, and how to ask them.
PAGE_VIEWERS = {
    "evince": ["evince", "--page-index={page}", "{path}"],
    "okular": ["okular", "--page", "{page}", "{path}"],
    "zathura": ["zathura", "--page={page}", "{path}"],
}


def open_in_viewer(path: str, page: int | None) -> bool:
    """Open the file in the system viewer, at `page` where a known PDF viewer is installed.

    False when the system has no application for the file (the caller says so).
    """
    if page and path.lower().endswith(".pdf") and sys.platform.startswith("linux"):
        for name, args in PAGE_VIEWERS.items():
            if shutil.which(name):
                subprocess.Popen([a.format(page=page, path=path) for a in args], start_new_session=True)
                return True
    return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(path)))


HINT = "Click a citation such as [1] to read the passage it points to."


class SourcePreview(QWidget):
    problem = Signal(str)  # something the user asked for could not be done

    def __init__(self) -> None:
        super().__init__()
        self.source: dict[str, Any] | None = None
        self.heading = QLabel("Sources")
        self.heading.setAccessibleName("Source file and place")
        self.heading.setWordWrap(True)
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.open_button = QPushButton("Open")
        self.open_button.setAccessibleName("Open the file in its viewer")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._open)
        self.text = QTextBrowser()
        self.text.setAccessibleName("Source passage")
        self.text.setToolTip(HINT)
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)
        self.clear()

    def clear(self) -> None:
        """Nothing selected (a new or another chat): no passage of a previous answer lingers, and the pane
        says what it is for (as text that wraps: a placeholder is drawn on one line, cut in a narrow pane)."""
        self.source = None
        self.heading.setText("Sources")
        self.open_button.setEnabled(False)
        grey = QApplication.palette().color(QPalette.ColorRole.PlaceholderText).name()
        self.text.setHtml(f"<p style='color: {grey}'><i>{HINT}</i></p>")

    def show_loading(self, source: dict[str, Any]) -> None:
        self.source = source
        self.heading.setText(self._title(source))
        self.heading.setToolTip(source["path"])
        self.open_button.setEnabled(os.path.exists(source["path"]))

    def show_passage(self, source: dict[str, Any], passage: Passage | None, note: str = "") -> None:
        """The passage with its surroundings; without `passage` (file changed), the text we cited.
        Hard-wrapped text (a licence, an RFC, a mail saved as text) is shown as paragraphs."""
        self.source = source
        self.heading.setText(self._title(source, passage))
        self.heading.setToolTip(source["path"])
        self.open_button.setEnabled(os.path.exists(source["path"]))
        back = _soft_highlight(self.palette())
        before, text, after = (
            (passage.before, passage.text, passage.after) if passage else ("", source["text"], "")
        )
        shown, (start, end) = unwrapped(before + text + after, (len(before), len(before) + len(text)))
        body = (
            f"<div style='white-space:pre-wrap'>{html.escape(shown[:start])}<a name='cited'></a>"
            f"<span style='background:{back}'>{html.escape(shown[start:end])}</span>"
            f"{html.escape(shown[end:])}</div>"
        )
        if note:
            body = f"<p><i>{html.escape(note)}</i></p>" + body
        self.text.setHtml(body)
        self.text.scrollToAnchor("cited")

    @property
    def highlighted(self) -> str:
        """The highlighted passage as plain text (what the user sees marked), its lines joined by "\n"."""
        doc = self.text.document()
        block = doc.begin()
        lines: list[tuple[bool, str]] = []  # each block: whether it holds marked text, and that text
        while block.isValid():
            it = block.begin()
            out = []
            while not it.atEnd():
                frag = it.fragment()
                if frag.isValid() and frag.charFormat().background().style() != Qt.BrushStyle.NoBrush:
                    out.append(frag.text())
                it += 1
            lines.append((bool(out), "".join(out)))
            block = block.next()
        marked = [i for i, (has, _) in enumerate(lines) if has]
        return "\n".join(text for _, text in lines[marked[0] : marked[-1] + 1]) if marked else ""

    def _title(self, source: dict[str, Any], passage: Passage | None = None) -> str:
        """The file and its place: the page, the heading (a section, a sheet's rows, a slide, an attachment,
        or 'OCR text, confidence N %' for a page read from a scan), and a text file's lines."""
        page = f" — page {source['page']}" if source.get("page") else ""
        heading = f" · {source['heading']}" if source.get("heading") else ""
        team = "team index: " if source.get("origin") == "team" else ""  # not on this computer
        return f"{team}{os.path.basename(source['path'])}{page}{heading}{lines_label(passage)}"

    def _open(self) -> None:
        if self.source and not open_in_viewer(self.source["path"], self.source.get("page")):
            self.problem.emit(
                f"No application on this computer opens {os.path.basename(self.source['path'])}; "
                f"the file is at {self.source['path']}"
            )


def lines_label(passage: Passage | None) -> str:
    """' · lines 120–134' (' · line 7') for a passage of a text file; '' when its lines are not known."""
    if passage is None or passage.lines is None:
        return ""
    first, last = passage.lines
    return f" · line {first}" if first == last else f" · lines {first}–{last}"


#: A line that starts a list item: "- x", "* x", "• x", "1. x", "2) x", "a) x", "(iv) x"
LIST_ITEM = re.compile(r"\s*(?:[-*•+]|\d{1,3}[.)]|[a-zA-Z][.)]|\(\w{1,4}\))\s")
#: A line laid out in columns (a table, a form, a table of contents) or quoted from a mail
LAID_OUT = re.compile(r"\S {3,}\S|\t|\||\.{4}|^\s*>")
#: Hard-wrapped text is wrapped at a width in this range (characters); a wider "width" is long lines
WRAP_WIDTHS = range(30, 101)


def unwrapped(text: str, mark: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """`text` with the line breaks of its hard-wrapped paragraphs joined (where the next line's first word
    would not have fitted on the line: the break was the wrapping's, not the writer's), and where the
    span `mark` of `text` is in the result. Blank-line paragraph breaks, list items, indented and laid-out
    lines (code, tables) keep their line breaks; text that is not hard-wrapped keeps all of them."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    width = _wrap_width(lines)
    soft: set[int] = set()  # the lines whose break is the wrapping's
    pairs = 0
    for i in range(len(lines) - 1):
        if lines[i].strip() and lines[i + 1].strip():
            pairs += 1
            if width in WRAP_WIDTHS and _soft_break(lines[i].rstrip(), lines[i + 1], width):
                soft.add(i)
    if len(soft) < 2 or len(soft) < 0.3 * pairs:
        soft.clear()  # not hard-wrapped text
    edits: list[tuple[int, int, str]] = []
    for i in range(len(lines) - 1):
        if i in soft:
            following = lines[i + 1]
            end = starts[i] + len(lines[i].rstrip())
            edits.append((end, starts[i + 1] + len(following) - len(following.lstrip()), " "))
        elif lines[i].endswith("\r"):
            edits.append((starts[i + 1] - 2, starts[i + 1] - 1, ""))  # CR LF: a line break, once
    return _apply(text, edits, mark)


def _wrap_width(lines: list[str]) -> int:
    """The longest line length (in characters) that at least 5 % of the lines, and two, reach."""
    lengths = sorted((len(line.rstrip().expandtabs()) for line in lines if line.strip()), reverse=True)
    if len(lengths) < 3:
        return 0
    return lengths[max(1, len(lengths) // 20)]


def _indent(line: str) -> int:
    return len(line.expandtabs()) - len(line.expandtabs().lstrip())


def _soft_break(line: str, following: str, width: int) -> bool:
    """Whether the break between `line` and `following` (both not blank) was made by wrapping at `width`."""
    word = following.split()[0]
    if len(line.expandtabs()) + 1 + len(word) <= width or len(line.expandtabs()) < width // 2:
        return False  # the word would have fitted: the writer ended the line
    if LIST_ITEM.match(following) or LAID_OUT.search(line) or LAID_OUT.search(following):
        return False
    deeper = _indent(following) - _indent(line)
    return deeper <= 0 or (deeper <= 8 and LIST_ITEM.match(line) is not None)  # a list item's hanging indent


def _apply(
    text: str, edits: list[tuple[int, int, str]], mark: tuple[int, int]
) -> tuple[str, tuple[int, int]]:
    """`text` with each (start, end, replacement) applied (sorted, not overlapping), and `mark` moved along
    (a mark inside a replaced stretch goes to the side of it that keeps the marked text whole)."""
    out: list[str] = []
    pos = 0
    for start, end, replacement in edits:
        out += [text[pos:start], replacement]
        pos = end
    out.append(text[pos:])

    def moved(at: int, opening: bool) -> int:
        shift = 0
        for start, end, replacement in edits:
            if end <= at:
                shift += len(replacement) - (end - start)
            elif start < at:
                return start + shift + (len(replacement) if opening else 0)
            else:
                break
        return at + shift

    return "".join(out), (moved(mark[0], True), moved(mark[1], False))


def _soft_highlight(palette: QPalette) -> str:
    """The system's highlight colour, faded into the page colour: marked, yet easy to read (light or dark)."""
    mark, base = palette.color(QPalette.ColorRole.Highlight), palette.color(QPalette.ColorRole.Base)
    pairs = ((mark.red(), base.red()), (mark.green(), base.green()), (mark.blue(), base.blue()))
    return "#" + "".join(f"{round(0.35 * m + 0.65 * b):02x}" for m, b in pairs)
