"""The source pane: a cited passage, highlighted in the text around it, with file and page."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

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


class SourcePreview(QWidget):
    problem = Signal(str)  # something the user asked for could not be done

    def __init__(self) -> None:
        super().__init__()
        self.source: dict[str, Any] | None = None
        self.heading = QLabel("Sources")
        self.heading.setAccessibleName("Source file and page")
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
        self.text.setPlaceholderText("Click a citation such as [1] to read the passage it points to.")
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)

    def clear(self) -> None:
        """Nothing selected (a new or another chat): no passage of a previous answer lingers."""
        self.source = None
        self.heading.setText("Sources")
        self.open_button.setEnabled(False)
        self.text.clear()

    def show_loading(self, source: dict[str, Any]) -> None:
        self.source = source
        self.heading.setText(self._title(source))
        self.open_button.setEnabled(os.path.exists(source["path"]))

    def show_passage(self, source: dict[str, Any], passage: Passage | None, note: str = "") -> None:
        """The passage with its surroundings; without `passage` (file changed), the text we cited."""
        self.source = source
        self.heading.setText(self._title(source))
        self.open_button.setEnabled(os.path.exists(source["path"]))
        back = _soft_highlight(self.palette())
        before, text, after = (
            (passage.before, passage.text, passage.after) if passage else ("", source["text"], "")
        )
        body = (
            f"<p>{_para(before)} <a name='cited'></a><span style='background:{back}'>"
            f"{_para(text)}</span> {_para(after)}</p>"
        )
        if note:
            body = f"<p><i>{html.escape(note)}</i></p>" + body
        self.text.setHtml(body)
        self.text.scrollToAnchor("cited")

    @property
    def highlighted(self) -> str:
        """The highlighted passage as plain text (what the user sees marked)."""
        doc = self.text.document()
        block = doc.begin()
        out = []
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                if frag.isValid() and frag.charFormat().background().style() != Qt.BrushStyle.NoBrush:
                    out.append(frag.text())
                it += 1
            block = block.next()
        return "".join(out)

    def _title(self, source: dict[str, Any]) -> str:
        """The file and page, and the heading: a section, a sheet's rows, a slide, an attachment, or
        'OCR text, confidence N %' for a page read from a scan."""
        page = f" — page {source['page']}" if source.get("page") else ""
        heading = f" · {source['heading']}" if source.get("heading") else ""
        return f"{os.path.basename(source['path'])}{page}{heading}"

    def _open(self) -> None:
        if self.source and not open_in_viewer(self.source["path"], self.source.get("page")):
            self.problem.emit(
                f"No application on this computer opens {os.path.basename(self.source['path'])}; "
                f"the file is at {self.source['path']}"
            )


def _para(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _soft_highlight(palette: QPalette) -> str:
    """The system's highlight colour, faded into the page colour: marked, yet easy to read (light or dark)."""
    mark, base = palette.color(QPalette.ColorRole.Highlight), palette.color(QPalette.ColorRole.Base)
    pairs = ((mark.red(), base.red()), (mark.green(), base.green()), (mark.blue(), base.blue()))
    return "#" + "".join(f"{round(0.35 * m + 0.65 * b):02x}" for m, b in pairs)
