"""The centre pane: the transcript, citation chips and the question box.

The transcript is plain data (`Entry` objects) rendered to HTML; while an answer streams,
tokens are appended at the end of the document instead of re-rendering it.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QGuiApplication,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.answer.pipeline import answer_notes
from sealroom.core.answer.prompts import EVIDENCE_HEADING
from sealroom.core.protocols import REASONS

from .text import answer_markdown, answer_plain, highlighted, mixed, score_bar, whole_sentences

CITATION = re.compile(r"\[(\d{1,2})\]")


@dataclass
class Entry:
    role: str  # user, assistant, search, notice
    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)  # path, page, text, sha256, seq, ...
    note: str = ""
    # generated sentences that failed verification, shown only behind a marked toggle
    dropped: list[dict[str, Any]] = field(default_factory=list)
    show_dropped: bool = False
    answer_id: int = 0  # the stored answer, for Export… and rating
    rating: str = ""  # the user's standing rating: "", "good", or "bad: <reason>"
    trace_id: str = ""  # the ask's trace, for "Why this answer?"
    question: str = ""
    # every passage the answer retrieved (n, path, page, chunk_id): what a correction may choose from
    sources: list[dict[str, Any]] = field(default_factory=list)
    filters: str = ""  # a search's filters as the user reads them ("PDF · past month")


def answer_note(record: dict[str, Any]) -> str:
    """What the reader should know about an answer, from its record (Answer.to_dict); sentences left out
    have their own line under the answer, with a toggle to show them."""
    return " ".join(answer_notes(record, count_dropped=False))


def dropped_of(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((record or {}).get("verification", {}).get("dropped", []))


def entry_of(
    role: str,
    text: str,
    citations: list[dict[str, Any]],
    record: dict[str, Any] | None,
    answer_id: int = 0,
    rating: str = "",
) -> Entry:
    """A stored message as a transcript entry (older messages have no record)."""
    record = record or {}
    return Entry(
        role,
        text,
        citations,
        answer_note(record) if record else "",
        dropped_of(record),
        answer_id=answer_id,
        rating=rating,
        trace_id=str(record.get("trace_id") or ""),
        question=str(record.get("question") or ""),
        sources=list(record.get("sources") or []),
    )


def rating_text(rating: str) -> str:
    if rating == "good":
        return "You rated this helpful"
    if rating.startswith("bad"):
        why = rating.partition(": ")[2]
        return "You rated this not helpful" + (f" ({REASONS.get(why, why)})" if why else "")
    return ""


def source_label(source: dict[str, Any]) -> str:
    """'file, p. 2', or 'file · Retention, rows 2–28' where the place is a heading (a sheet's rows, a
    slide, an attachment) rather than a page."""
    page = f", p. {source['page']}" if source.get("page") else ""
    heading = source.get("heading") or ""
    place = f" · {heading[:48]}" if heading and not page else ""
    team = "team: " if source.get("origin") == "team" else ""  # team mode: from the team index
    return f"{team}{os.path.basename(source['path'])}{page}{place}"


class QuestionEdit(QPlainTextEdit):
    """Enter submits; Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ElidedLabel(QLabel):
    """One line that never widens its pane: text too long for the width ends in '…' (the tooltip has it
    whole), so a long chat title or state cannot push the splitter's panes around. `emphasis` > 1: bold,
    that much larger than the application's text (and following its size as the user changes it)."""

    def __init__(self, text: str = "", emphasis: float = 1.0) -> None:
        super().__init__(text)
        self.emphasis = emphasis
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(40)

    def shown_font(self) -> QFont:
        font = QFont(self.font())
        if self.emphasis != 1.0:
            font.setPointSizeF(QApplication.font().pointSizeF() * self.emphasis)
            font.setBold(True)
        return font

    def sizeHint(self) -> QSize:
        metrics = QFontMetrics(self.shown_font())
        return QSize(metrics.horizontalAdvance(self.text()), metrics.height() + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(40, self.sizeHint().height())

    def setText(self, text: str) -> None:
        super().setText(text)
        self.updateGeometry()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            self.updateGeometry()
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setFont(self.shown_font())
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        rect = self.contentsRect()
        elided = painter.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        self.setToolTip(self.text() if elided != self.text() else "")  # whole where it is cut, as drawn
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), elided)

    def fully_shown(self) -> bool:
        width = QFontMetrics(self.shown_font()).horizontalAdvance(self.text())
        return width <= self.contentsRect().width()


#: The search filters' choices: (label, value). Types are file extensions as the retriever takes them.
TYPES = [
    ("All types", []),
    ("PDF", ["pdf"]),
    ("Word", ["docx", "doc", "odt", "rtf"]),
    ("Text", ["txt", "md", "markdown", "csv", "log"]),
    ("Web pages", ["html", "htm"]),
    ("E-mail", ["eml", "msg"]),
    ("Spreadsheets", ["xlsx", "xls", "ods", "csv"]),
    ("Presentations", ["pptx", "odp"]),
]
DATES = [("Any time", 0), ("Past week", 7), ("Past month", 31), ("Past year", 366)]


class Conversation(QWidget):
    ask = Signal(str)
    search = Signal(str, dict)  # the query, and its filters: folder, types, days
    stop = Signal()
    new_chat = Signal()
    source_clicked = Signal(dict)
    export_answer = Signal(int)  # an answer id
    rate_answer = Signal(int, bool)  # an entry's index, helpful or not
    why_answer = Signal(int)  # an entry's index: show its trace
    regenerate = Signal(int)  # an entry's index: ask its question again in this chat
    copied = Signal(str)  # what was copied, for the status bar
    export_chat = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Entry] = []
        self.busy = False
        self.can_export = True  # False when the IT policy turns exports off

        self.title = ElidedLabel("New chat", emphasis=1.2)
        self.title.setAccessibleName("Chat title")
        self.new_button = QPushButton("New chat")
        self.new_button.setAccessibleName("New chat")
        self.new_button.clicked.connect(self.new_chat)
        self.export_button = QPushButton("Export chat…")
        self.export_button.setAccessibleName("Export this chat")
        self.export_button.setToolTip("Send this chat with its sources to a folder or shared drive")
        self.export_button.clicked.connect(self.export_chat)
        self.export_button.setEnabled(False)

        self.transcript = QTextBrowser()
        self.transcript.setAccessibleName("Conversation")
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._anchor)

        self.chips = QWidget()
        self.chips.setAccessibleName("Sources of the last answer")
        self.chips_layout = QHBoxLayout(self.chips)
        self.chips_layout.setContentsMargins(0, 0, 0, 0)
        # chips scroll sideways: many long file names must not widen the window past the screen
        self.chips_area = QScrollArea()
        self.chips_area.setWidget(self.chips)
        self.chips_area.setWidgetResizable(True)
        self.chips_area.setFrameShape(QFrame.Shape.NoFrame)
        self.chips_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chips_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.chips_area.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._size_chips_row()
        self.chip_buttons: list[QPushButton] = []

        self.question = QuestionEdit()
        self.question.setAccessibleName("Question")
        self.question.setPlaceholderText(
            "Ask about your documents…  (Enter asks, Shift+Enter for a new line)"
        )
        self.question.setMaximumHeight(90)
        self.question.setTabChangesFocus(True)  # Tab leaves the box (a question needs no tab character)
        self.question.submitted.connect(self.submit)
        self.search_only = QCheckBox("Search only")
        self.search_only.setAccessibleName("Search only, without the model")
        self.search_only.setToolTip("List matching passages without asking the model")
        self.search_only.toggled.connect(self._search_mode)
        self.folder_filter = QComboBox()
        self.folder_filter.setAccessibleName("Search in folder")
        self.folder_filter.addItem("All folders", "")
        self.type_filter = QComboBox()
        self.type_filter.setAccessibleName("Search in file type")
        for label, types in TYPES:
            self.type_filter.addItem(label, types)
        self.date_filter = QComboBox()
        self.date_filter.setAccessibleName("Search files modified")
        for label, days in DATES:
            self.date_filter.addItem(label, days)
        for combo in (self.folder_filter, self.type_filter, self.date_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.filters = QWidget()
        filter_row = QHBoxLayout(self.filters)
        filter_row.setContentsMargins(0, 0, 0, 0)
        filter_row.addWidget(QLabel("In:"))
        filter_row.addWidget(self.folder_filter, 2)
        filter_row.addWidget(self.type_filter, 1)
        filter_row.addWidget(self.date_filter, 1)
        self.filters.setVisible(False)
        self.ask_button = QPushButton("Ask")
        self.ask_button.setAccessibleName("Ask")
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop generating")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setVisible(False)
        self.state = ElidedLabel("")
        self.state.setAccessibleName("Answer state")

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.export_button)
        top.addWidget(self.new_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.search_only)
        buttons.addWidget(self.state, 1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.ask_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.chips_area)
        layout.addWidget(self.question)
        layout.addWidget(self.filters)
        layout.addLayout(buttons)
        self.setMinimumWidth(360)

    def _size_chips_row(self) -> None:
        """The row keeps its height when empty (the question box does not move as answers come and go),
        and follows the text size (a chip is never cut at the bottom at 150 %)."""
        chip = QPushButton("[1] x")
        chip.setFlat(True)
        chip.setFont(QApplication.font())
        scrollbar = self.chips_area.horizontalScrollBar().sizeHint().height()
        self.chips_area.setFixedHeight(chip.sizeHint().height() + scrollbar + 2)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.ApplicationFontChange):
            self._size_chips_row()
        super().changeEvent(event)

    # --- input ------------------------------------------------------------------------
    def submit(self) -> None:
        text = self.question.toPlainText().strip()
        if not text or self.busy:
            return
        self.question.clear()
        if self.search_only.isChecked():
            self.search.emit(text, self.search_filters())
        else:
            self.ask.emit(text)

    def _search_mode(self, on: bool) -> None:
        self.filters.setVisible(on)
        self.ask_button.setText("Search" if on else "Ask")
        self.ask_button.setAccessibleName("Search" if on else "Ask")

    def search_filters(self) -> dict[str, Any]:
        """The filters chosen: folder ('' for all), types ([] for all), days (0 for any time), and how
        they read ('' when none is set)."""
        chosen = {
            "folder": self.folder_filter.currentData() or "",
            "types": list(self.type_filter.currentData() or []),
            "days": int(self.date_filter.currentData() or 0),
        }
        said = [
            combo.currentText()
            for combo in (self.folder_filter, self.type_filter, self.date_filter)
            if combo.currentIndex() > 0
        ]
        return chosen | {"said": " · ".join(said)}

    def set_folders(self, folders: list[str]) -> None:
        """The folder filter's choices (the workspace's folders), keeping the one chosen if still there."""
        current = self.folder_filter.currentData()
        self.folder_filter.clear()
        self.folder_filter.addItem("All folders", "")
        for path in sorted(folders):
            self.folder_filter.addItem(os.path.basename(path.rstrip("/")) or path, path)
            self.folder_filter.setItemData(self.folder_filter.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        index = self.folder_filter.findData(current) if current else 0
        self.folder_filter.setCurrentIndex(max(index, 0))

    def set_busy(self, busy: bool, state: str = "") -> None:
        self.busy = busy
        self.ask_button.setEnabled(not busy)
        self.stop_button.setVisible(busy and not self.search_only.isChecked())
        self.state.setText(state)

    # --- transcript -------------------------------------------------------------------
    def show_chat(self, title: str, entries: list[Entry]) -> None:
        self.title.setText(title)
        self.entries = entries
        self.state.setText("")  # "Answered in 8.3 s" belongs to the chat it was said in
        self.redraw()
        last = next((e for e in reversed(entries) if e.role in ("assistant", "search")), None)
        self.set_chips(last.citations if last else [], "Sources:")

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.redraw()

    def begin_answer(self) -> None:
        self.entries.append(Entry("assistant", ""))
        self.redraw()
        self.set_chips([], "")

    def append_token(self, piece: str) -> None:
        self.entries[-1].text += piece
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def finish_answer(
        self,
        text: str,
        citations: list[dict[str, Any]],
        note: str = "",
        dropped: list[dict[str, Any]] | None = None,
    ) -> None:
        entry = self.entries[-1]
        entry.text, entry.citations, entry.note, entry.dropped = text, citations, note, dropped or []
        self.redraw()
        self.set_chips(citations, "Cited:" if citations else "")

    def redraw(self) -> None:
        parts = []
        for i, entry in enumerate(self.entries):
            parts.append(self._entry_html(i, entry))
        self.transcript.setHtml("".join(parts))
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _entry_html(self, i: int, entry: Entry) -> str:
        if entry.role == "user":
            return f"<p style='margin-top:14px'><b>You:</b> {_para(entry.text)}</p>"
        if entry.role == "notice":
            return f"<p><i>{html.escape(entry.text)}</i></p>"
        if entry.role == "search":
            return self._search_html(i, entry)
        body = _para(entry.text).replace(EVIDENCE_HEADING, f"<b>{EVIDENCE_HEADING}</b>", 1)
        known = {c["n"] for c in entry.citations}
        body = CITATION.sub(lambda m: _cite_link(i, m, known), body)
        html_out = f"<p><b>Sealroom:</b> {body}</p>" + self._cards_html(i, entry.citations)
        if entry.answer_id:
            said = rating_text(entry.rating)
            links = [
                f"<a href='copy:{i}:text'>Copy</a>",
                f"<a href='copy:{i}:md'>Copy as Markdown</a>",
                f"<a href='regenerate:{i}'>Regenerate</a>" if entry.question else "",
                f"<a href='export:{i}'>Export…</a>" if self.can_export else "",
                f"<a href='rate:{i}:good'>Helpful</a>" if entry.rating != "good" else "",
                f"<a href='rate:{i}:bad'>{'Correct it' if entry.rating.startswith('bad') else 'Not helpful'}…</a>",
                f"<a href='why:{i}'>Why this answer?</a>" if entry.trace_id else "",
            ]
            html_out += (
                "<p style='margin-left:12px'><small>"
                + (f"<i>{html.escape(said)}</i> · " if said else "")
                + " · ".join(link for link in links if link)
                + "</small></p>"
            )
        if entry.note:
            html_out += f"<p style='margin-left:12px'><small><i>{html.escape(entry.note)}</i></small></p>"
        if entry.dropped:
            count = len(entry.dropped)
            label = "Hide" if entry.show_dropped else "Show"
            html_out += (
                f"<p style='margin-left:12px'><small><a href='dropped:{i}'>{label} {count} generated "
                f"sentence{'s' if count > 1 else ''} not found in the sources</a></small></p>"
            )
            if entry.show_dropped:
                rows = "".join(
                    f"<li><b>Not found in the sources — not part of the answer:</b> "
                    f"<s>{html.escape(d['text'])}</s> <i>({html.escape(d.get('reason', ''))})</i></li>"
                    for d in entry.dropped
                )
                html_out += f"<ul style='margin-left:12px'>{rows}</ul>"
        return html_out

    def _cards_html(self, i: int, citations: list[dict[str, Any]]) -> str:
        """A card per cited passage under the answer: file, page or section, and a line of the passage."""
        if not citations:
            return ""
        palette = QApplication.palette()  # the theme just chosen, before widgets hear of it
        back = palette.color(QPalette.ColorRole.AlternateBase).name()
        line = palette.color(QPalette.ColorRole.Mid).name()
        rows = "".join(
            f"<tr><td bgcolor='{back}' style='border-left: 3px solid {line}; padding: 4px 8px'>"
            f"<a href='cite:{i}:{c['n']}'>[{c['n']}] {html.escape(source_label(c))}</a><br>"
            f"<small>“{html.escape(whole_sentences(c.get('text') or '', 160))}”</small></td></tr>"
            for c in citations
        )
        return f"<table width='100%' cellspacing='4' style='margin-left:8px'>{rows}</table>"

    def _search_html(self, i: int, entry: Entry) -> str:
        """Search only: each passage with its relevance bar, the query's words marked, whole sentences."""
        query = html.escape(entry.text)
        filters = f" <small>({html.escape(entry.filters)})</small>" if entry.filters else ""
        said = f"<p><i>{html.escape(entry.note)}</i></p>" if entry.note else ""  # the team index unreachable
        if not entry.citations:
            return f"<p>No passage matches “{query}”{filters}.</p>{said}"
        top = max(float(c.get("score") or 0) for c in entry.citations) or 1.0
        palette = QApplication.palette()
        strong = palette.color(QPalette.ColorRole.Highlight).name()
        base = palette.color(QPalette.ColorRole.Base).name()
        faint, mark = mixed(base, strong, 0.25), mixed(base, strong, 0.35)
        rows = []
        for n, c in enumerate(entry.citations, 1):
            relevance = float(c.get("score") or 0) / top
            words = highlighted(whole_sentences(c.get("text") or "", 320), entry.text, mark)
            rows.append(
                f"<li><a href='cite:{i}:{n}'>[{n}] {html.escape(source_label(c))}</a> "
                f"{score_bar(relevance, strong, faint)}<br>{words}</li>"
            )
        return (
            f"<p><b>{len(entry.citations)} passage{'' if len(entry.citations) == 1 else 's'} for</b> "
            f"“{query}”{filters} "
            f"<small>— relevance to the best match</small></p>{said}<ol>{''.join(rows)}</ol>"
        )

    def _anchor(self, url: QUrl) -> None:
        kind, _, rest = url.toString().partition(":")
        if kind == "export":
            self.export_answer.emit(self.entries[int(rest)].answer_id)
            return
        if kind == "rate":
            index, _, how = rest.partition(":")
            self.rate_answer.emit(int(index), how == "good")
            return
        if kind == "why":
            self.why_answer.emit(int(rest))
            return
        if kind == "regenerate":
            if not self.busy:
                self.regenerate.emit(int(rest))
            return
        if kind == "copy":
            index, _, how = rest.partition(":")
            self.copy_answer(int(index), markdown=how == "md")
            return
        if kind == "dropped":
            entry = self.entries[int(rest)]
            entry.show_dropped = not entry.show_dropped
            self.redraw()
            return
        if kind != "cite":
            return
        index, _, n = rest.partition(":")
        entry = self.entries[int(index)]
        for c in entry.citations:
            if str(c.get("n")) == n:
                self.source_clicked.emit(c)

    def copy_answer(self, index: int, markdown: bool = False) -> None:
        """The answer with its citations (file, page, passage) on the clipboard, as text or Markdown."""
        entry = self.entries[index]
        question = entry.question or next(
            (e.text for e in reversed(self.entries[:index]) if e.role == "user"), ""
        )
        text = (answer_markdown if markdown else answer_plain)(
            question, entry.text, entry.citations, entry.note
        )
        QGuiApplication.clipboard().setText(text)
        self.copied.emit(
            "Copied the answer as Markdown" if markdown else "Copied the answer with its sources"
        )

    # --- chips ------------------------------------------------------------------------
    def set_chips(self, citations: list[dict[str, Any]], caption: str) -> None:
        while self.chips_layout.count():
            item = self.chips_layout.takeAt(0)
            widget = item.widget() if item else None
            if widget:
                widget.hide()  # not painted under the new chips until Qt deletes it
                widget.deleteLater()
        self.chip_buttons = []
        if citations:
            self.chips_layout.addWidget(QLabel(caption))
        for c in citations[:8]:
            chip = QPushButton(f"[{c['n']}] {_elided(source_label(c))}")
            chip.setAccessibleName(f"Source {c['n']}: {source_label(c)}")
            chip.setToolTip(c["path"])
            chip.setFlat(True)
            chip.setCursor(Qt.CursorShape.PointingHandCursor)
            chip.clicked.connect(lambda _=False, c=c: self.source_clicked.emit(c))
            self.chips_layout.addWidget(chip)
            self.chip_buttons.append(chip)
        self.chips_layout.addStretch(1)
        self.chips_area.horizontalScrollBar().setValue(0)


def _elided(label: str, limit: int = 40) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _para(text: str) -> str:
    return html.escape(text.strip()).replace("\n", "<br>")


def _cite_link(i: int, match: re.Match[str], known: set[int]) -> str:
    n = int(match.group(1))
    return f"<a href='cite:{i}:{n}'>[{n}]</a>" if n in known else match.group(0)
