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

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
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
    return f"{os.path.basename(source['path'])}{page}{place}"


class QuestionEdit(QPlainTextEdit):
    """Enter submits; Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class Conversation(QWidget):
    ask = Signal(str)
    search = Signal(str)
    stop = Signal()
    new_chat = Signal()
    source_clicked = Signal(dict)
    export_answer = Signal(int)  # an answer id
    rate_answer = Signal(int, bool)  # an entry's index, helpful or not
    why_answer = Signal(int)  # an entry's index: show its trace
    export_chat = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Entry] = []
        self.busy = False
        self.can_export = True  # False when the IT policy turns exports off

        self.title = QLabel("New chat")
        self.title.setAccessibleName("Chat title")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.title.setFont(font)
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
        self.chip_buttons: list[QPushButton] = []

        self.question = QuestionEdit()
        self.question.setAccessibleName("Question")
        self.question.setPlaceholderText(
            "Ask about your documents…  (Enter asks, Shift+Enter for a new line)"
        )
        self.question.setMaximumHeight(90)
        self.question.submitted.connect(self.submit)
        self.search_only = QCheckBox("Search only")
        self.search_only.setAccessibleName("Search only, without the model")
        self.search_only.setToolTip("List matching passages without asking the model")
        self.ask_button = QPushButton("Ask")
        self.ask_button.setAccessibleName("Ask")
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop generating")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setVisible(False)
        self.state = QLabel("")
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
        layout.addLayout(buttons)

    # --- input ------------------------------------------------------------------------
    def submit(self) -> None:
        text = self.question.toPlainText().strip()
        if not text or self.busy:
            return
        self.question.clear()
        (self.search if self.search_only.isChecked() else self.ask).emit(text)

    def set_busy(self, busy: bool, state: str = "") -> None:
        self.busy = busy
        self.ask_button.setEnabled(not busy)
        self.stop_button.setVisible(busy and not self.search_only.isChecked())
        self.state.setText(state)

    # --- transcript -------------------------------------------------------------------
    def show_chat(self, title: str, entries: list[Entry]) -> None:
        self.title.setText(title)
        self.entries = entries
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
            rows = "".join(
                f"<li><a href='cite:{i}:{n}'>[{n}] {html.escape(source_label(c))}</a><br>"
                f"{html.escape(_snippet(c['text']))}</li>"
                for n, c in enumerate(entry.citations, 1)
            )
            return (
                f"<p><b>Passages for</b> “{html.escape(entry.text)}”</p><ol>{rows}</ol>"
                if rows
                else (f"<p>No passage matches “{html.escape(entry.text)}”.</p>")
            )
        body = _para(entry.text).replace(EVIDENCE_HEADING, f"<b>{EVIDENCE_HEADING}</b>", 1)
        known = {c["n"] for c in entry.citations}
        body = CITATION.sub(lambda m: _cite_link(i, m, known), body)
        sources = " ".join(
            f"<a href='cite:{i}:{c['n']}'>[{c['n']}] {html.escape(source_label(c))}</a>"
            for c in entry.citations
        )
        html_out = f"<p><b>Sealroom:</b> {body}</p>"
        export = f" · <a href='export:{i}'>Export…</a>" if entry.answer_id and self.can_export else ""
        if sources or export:
            html_out += f"<p style='margin-left:12px'><small>Sources: {sources or '—'}{export}</small></p>"
        if entry.answer_id:
            said = rating_text(entry.rating)
            links = [
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
        self.chips_area.setVisible(bool(citations))
        self.chips_area.setFixedHeight(
            self.chips.sizeHint().height() + self.chips_area.horizontalScrollBar().sizeHint().height()
        )


def _elided(label: str, limit: int = 40) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _para(text: str) -> str:
    return html.escape(text.strip()).replace("\n", "<br>")


def _snippet(text: str, limit: int = 280) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _cite_link(i: int, match: re.Match[str], known: set[int]) -> str:
    n = int(match.group(1))
    return f"<a href='cite:{i}:{n}'>[{n}]</a>" if n in known else match.group(0)
