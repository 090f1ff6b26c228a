"""The feedback loop in the window: rate and correct an answer, "Why this answer?", the Health window, the
drift check on the answer lane after anything that can change answers, and alerts in the tray."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.feedback.regression import settings_text
from sealroom.core.protocols import REASONS, Hit

from .conversation import Conversation, Entry, source_label
from .ops import Op

if TYPE_CHECKING:
    from sealroom.core.engine import Engine

    from .host import EngineHost

ALERT_EVERY_MS = 60_000


class RatingDialog(QDialog):
    """Why an answer was not helpful, and what does answer it: a passage (from the answer's own sources or a
    search) and/or the expected answer in the user's words."""

    def __init__(self, parent: QWidget | None, entry: Entry, search: Callable[[str], None]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Not helpful — Sealroom")
        self.setAccessibleName("Rate an answer")
        self._search = search
        question = QLabel(f"<b>Question:</b> {html.escape(entry.question or '')}")
        question.setWordWrap(True)
        self.reason = QComboBox()
        self.reason.setAccessibleName("Why it was not helpful")
        for key, text in REASONS.items():
            self.reason.addItem(text[0].upper() + text[1:], key)
        self.passages = QListWidget()
        self.passages.setAccessibleName("The passage that does answer")
        self.passages.setWordWrap(True)
        none = QListWidgetItem("(no passage: I will type the answer, or nothing should be found)")
        none.setData(256, "")
        self.passages.addItem(none)
        self.add_passages(entry.sources)
        self.passages.setCurrentRow(0)
        self.query = QLineEdit()
        self.query.setAccessibleName("Search for the passage that answers")
        self.query.setPlaceholderText("Search your documents for the passage that answers…")
        self.query.returnPressed.connect(self._run_search)
        find = QPushButton("Search")
        find.setAccessibleName("Search passages")
        find.clicked.connect(self._run_search)
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(find)
        self.expected = QPlainTextEdit()
        self.expected.setAccessibleName("The answer you expected")
        self.expected.setPlaceholderText("Optional: the answer you expected, in your words")
        self.expected.setMaximumHeight(80)
        form = QFormLayout()
        form.addRow("Reason:", self.reason)
        form.addRow("Passage that answers:", self.passages)
        form.addRow("", row)
        form.addRow("Expected answer:", self.expected)
        note = QLabel(
            "A chosen passage answers this question next time (marked as your correction); every rating "
            "joins the questions Sealroom checks after a model or setting change. You can remove it later."
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        save = buttons.button(QDialogButtonBox.StandardButton.Ok)
        save.setText("Save")
        save.setAutoDefault(False)  # Enter in the search field searches; it does not save half a correction
        find.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(question)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(640, 520)

    def add_passages(self, sources: list[dict[str, Any]]) -> None:
        known = {self.passages.item(i).data(256) for i in range(self.passages.count())}
        for s in sources:
            if not s.get("chunk_id") or s["chunk_id"] in known:
                continue
            text = " ".join(str(s.get("text") or "").split())[:160]
            item = QListWidgetItem(source_label(s) + (f" — {text}" if text else ""))
            item.setData(256, s["chunk_id"])
            item.setToolTip(s.get("path", ""))
            self.passages.addItem(item)

    def _run_search(self) -> None:
        if self.query.text().strip():
            self._search(self.query.text().strip())

    def found(self, hits: list[Hit]) -> None:
        first = self.passages.count()
        self.add_passages([{**h.to_dict(), "chunk_id": h.chunk_id} for h in hits])
        if self.passages.count() > first:
            self.passages.setCurrentRow(first)

    def choice(self) -> tuple[str, str, str]:
        """(reason, passage chunk id, expected answer)."""
        item = self.passages.currentItem()
        return (
            str(self.reason.currentData()),
            str(item.data(256) or "") if item else "",
            self.expected.toPlainText().strip(),
        )


class RatingsDialog(QDialog):
    """Your ratings and corrections: what each said, and Remove (a removed correction is no longer used or
    checked)."""

    def __init__(self, parent: QWidget | None, host: EngineHost) -> None:
        super().__init__(parent)
        self.setWindowTitle("Ratings and corrections — Sealroom")
        self.setAccessibleName("Ratings and corrections")
        self.host = host
        self.table = QTableWidget(0, 4)
        self.table.setAccessibleName("Your ratings and corrections")
        self.table.setHorizontalHeaderLabels(["Date", "Question", "Rating", "Correction"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.remove = QPushButton("Remove")
        self.remove.setAccessibleName("Remove the chosen rating or correction")
        self.remove.clicked.connect(self._remove)
        self.empty = QLabel("No ratings yet: rate answers with Helpful or Not helpful… under each answer.")
        self.empty.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.remove)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.resize(860, 420)
        self.ids: list[int] = []
        self.refresh()

    def refresh(self) -> None:
        self.host.read(lambda engine: engine.feedback.all(), self._show)

    def _show(self, ratings: list[Any]) -> None:
        from sealroom.core.answer.corrections import when

        self.ids = [r.id for r in ratings]
        self.table.setRowCount(len(ratings))
        for row, r in enumerate(reversed(ratings)):
            said = "helpful" if r.rating == "good" else "not helpful: " + REASONS.get(r.reason, r.reason)
            fix = "; ".join(
                x
                for x in (
                    f"passage {r.passage}" if r.passage else "",
                    f"expected: {r.expected}" if r.expected else "",
                )
                if x
            )
            for col, text in enumerate((when(r.created_at), r.question, said, fix or "—")):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.ids.reverse()
        self.table.resizeRowsToContents()
        self.empty.setVisible(not ratings)
        self.remove.setEnabled(bool(ratings))

    def _remove(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        feedback_id = self.ids[rows[0].row()]
        self.host.read(lambda engine: engine.feedback.remove(feedback_id), lambda _: self.refresh())


STAGE_NAMES = {
    "ask": "The whole answer",
    "retrieve": "Retrieve passages",
    "evidence": "Choose the quotes",
    "model_load": "Load the model",
    "generate": "Generate sentences",
    "verify": "Check each sentence against the quotes",
    "store": "Store the answer",
}


def trace_html(spans: list[dict[str, Any]]) -> str:
    """The trace as a person reads it: each stage, how long it took, what it chose and dropped."""
    if not spans:
        return "<p>No trace was kept for this answer (monitoring is off, or the trace was rotated away).</p>"
    rows = []
    for s in spans:
        ms = (s["end_ns"] - s["start_ns"]) / 1e6
        attrs = "<br>".join(
            f"{html.escape(k.replace('_', ' '))}: {html.escape(_value(v))}"
            for k, v in s["attributes"].items()
        )
        rows.append(
            f"<tr><td valign='top'><b>{html.escape(STAGE_NAMES.get(s['name'], s['name']))}</b></td>"
            f"<td valign='top' align='right'>{ms:,.0f} ms</td><td valign='top'><small>{attrs}</small></td></tr>"
        )
    return (
        "<table cellpadding='4' cellspacing='0' border='1' style='border-collapse:collapse'>"
        "<tr><th>Stage</th><th>Time</th><th>What it chose and dropped</th></tr>" + "".join(rows) + "</table>"
    )


def _value(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) if v else "none"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


class FeedbackUi(QObject):
    """Wires the conversation's rating links, the Health window, the drift check and the alerts."""

    def __init__(self, window: Any, host: EngineHost, conversation: Conversation) -> None:
        super().__init__(window)
        self.window, self.host, self.conversation = window, host, conversation
        self.known_alerts: set[str] | None = None
        self.health: Any = None
        self.checking = False
        conversation.rate_answer.connect(self.rate)
        conversation.why_answer.connect(self.why)
        self.timer = QTimer(self)
        self.timer.setInterval(ALERT_EVERY_MS)
        self.timer.timeout.connect(self.poll)

    def start(self) -> None:
        self.timer.start()
        self.poll()

    # --- rating ------------------------------------------------------------------------------
    def rate(self, index: int, good: bool) -> None:
        entry = self.conversation.entries[index]
        if good:
            self._save(entry, True, "", "", "")
            return
        dialog = RatingDialog(self.window, entry, lambda q: self.host.search(q, dialog.found))
        dialog.accepted.connect(lambda: self._save(entry, False, *dialog.choice()))
        self.dialog = dialog
        dialog.open()

    def _save(self, entry: Entry, good: bool, reason: str, passage: str, expected: str) -> None:
        engine = self.host.require_engine()

        def saved(_: Any) -> None:
            entry.rating = "good" if good else f"bad: {reason}"
            self.conversation.redraw()
            what = (
                "Thanks: rated helpful"
                if good
                else "Saved your correction"
                if passage or expected
                else "Saved"
            )
            self.window.statusBar().showMessage(
                f"{what}. It joins the questions checked after changes.", 8000
            )
            self.maybe_check_drift()  # the new rating joins the baseline now, while nothing has changed

        Op(
            self.window,
            lambda _: engine.feedback.rate(entry.answer_id, good, reason, passage, expected),
            saved,
        ).run()

    # --- why this answer ------------------------------------------------------------------------
    def why(self, index: int) -> None:
        entry = self.conversation.entries[index]

        def show(spans: list[dict[str, Any]]) -> None:
            dialog = QDialog(self.window)
            dialog.setWindowTitle("Why this answer? — Sealroom")
            view = QTextBrowser()
            view.setAccessibleName("The answer's stages")
            view.setHtml(f"<p><b>{html.escape(entry.question)}</b></p>" + trace_html(spans))
            close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
            close.rejected.connect(dialog.reject)
            layout = QVBoxLayout(dialog)
            layout.addWidget(view)
            layout.addWidget(close)
            dialog.resize(760, 520)
            self.trace_dialog = dialog
            dialog.open()

        self.host.read(lambda engine: engine.feedback.trace(entry.trace_id), show)

    def open_ratings(self) -> None:
        self.ratings_dialog = RatingsDialog(self.window, self.host)
        # the open chat shows the ratings as they now stand
        self.ratings_dialog.finished.connect(
            lambda _: self.window.chat_id and self.window.open_chat(self.window.chat_id)
        )
        self.ratings_dialog.open()

    # --- health and drift ---------------------------------------------------------------------------
    def open_health(self, days: int = 30) -> None:
        from .health import HealthWindow

        def show(data: tuple[dict[str, Any], dict[str, Any] | None]) -> None:
            if self.health is None:
                self.health = HealthWindow(*data, parent=self.window)
                self.health.period_changed.connect(self._reload)
                self.health.check_requested.connect(lambda: self.check_drift("you asked"))
                self.health.revert_requested.connect(self.revert)
            else:
                self.health.show_data(*data)
            self.health.show()
            self.health.raise_()

        self.host.read(lambda engine: _health_data(engine, days), show)

    def _reload(self, days: int) -> None:
        if self.health is not None:
            self.host.read(lambda engine: _health_data(engine, days), lambda d: self.health.show_data(*d))

    def maybe_check_drift(self) -> None:
        """Run the drift check when something that can change answers changed (on the answer lane, so it
        waits for any question under way and the window stays responsive)."""
        if self.host.engine is None or self.checking:
            return
        engine = self.host.require_engine()

        def run(why: str) -> None:
            if why:
                self.check_drift(why)

        self.host.read(lambda _: engine.feedback.due(), run)

    def check_drift(self, trigger: str) -> None:
        if self.checking or self.host.engine is None:
            return
        engine = self.host.require_engine()
        self.checking = True
        self.window.statusBar().showMessage(f"Checking your rated answers ({trigger})…")

        def progress(done_total: Any) -> None:
            done, total = done_total
            self.window.statusBar().showMessage(f"Checking your rated answers: {done} of {total}…")

        def work(report: Callable[[Any], None]) -> Any:
            return engine.feedback.check(trigger, lambda i, n: report((i, n)), self.host.closing)

        def done(result: Any) -> None:
            self.checking = False
            run, drift = result
            passed = sum(r["passed"] for r in run.results)
            message = f"Rated answers checked: {passed} of {len(run.results)} as they should be"
            if drift is not None and drift.regression:
                message = drift.summary()
                self._notify("Answers got worse", message + " — see Help › Health")
                self._offer_revert(drift.summary(), drift.revertible)
            self.window.statusBar().showMessage(message, 15_000)
            self.poll()
            if self.health is not None and self.health.isVisible():
                self._reload(self.health.days)

        def failed(exc: BaseException) -> None:
            self.checking = False
            self.window.statusBar().showMessage(f"The check of rated answers did not run: {exc}", 10_000)

        Op(None, work, done, failed, progress=progress, lane="answer").run()

    def _offer_revert(self, summary: str, back: dict[str, Any]) -> None:
        """A regression asks at once: go back to the settings before it, see the report, or keep them."""
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Answers got worse — Sealroom", summary, parent=self.window
        )
        box.setInformativeText(
            "Go back to " + settings_text(back) + "?"
            if back
            else "Nothing here can be undone from Settings (a new Sealroom, parser or embedding model); "
            "tell IT and see the report."
        )
        go = box.addButton("Go back", QMessageBox.ButtonRole.AcceptRole) if back else None
        show = box.addButton("Show report", QMessageBox.ButtonRole.ActionRole)
        box.addButton("Keep", QMessageBox.ButtonRole.RejectRole)

        def chosen(button: Any) -> None:
            if go is not None and button is go:
                self.revert()
            elif button is show:
                self.open_health()

        box.buttonClicked.connect(chosen)
        self.revert_box = box
        box.open()

    def revert(self) -> None:
        engine = self.host.require_engine()

        def work(_: Any) -> dict[str, Any]:
            return engine.feedback.go_back(engine.apply_settings)

        def done(back: dict[str, Any]) -> None:
            if "chat_model" in back:
                self.host.load_model()
            self.window.statusBar().showMessage(f"Went back to {settings_text(back)}", 10_000)
            self.poll()
            if self.health is not None:
                self._reload(self.health.days)

        Op(self.window, work, done).run()

    # --- alerts ------------------------------------------------------------------------------------
    def poll(self) -> None:
        """Read the alerts; a new one is a tray notification (or a status-bar line without a tray)."""

        def show(alerts: list[dict[str, Any]]) -> None:
            kinds = {a["kind"] + a["message"] for a in alerts}
            fresh = [a for a in alerts if a["kind"] + a["message"] not in (self.known_alerts or set())]
            self.known_alerts = kinds
            label = self.window.alert_label
            count = f"⚠ {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
            label.setText(f"<a href='health'>{count}</a>" if alerts else "")
            label.setToolTip("\n".join(f"{a['message']} — {a['fix']}" for a in alerts))
            for a in fresh:
                self._notify("Sealroom needs attention", f"{a['message']} — {a['fix']}")

        self.host.read(lambda engine: [a.to_dict() for a in engine.feedback.alerts()], show)

    def _notify(self, title: str, message: str) -> None:
        tray = self.window.tray
        if tray is not None:
            tray.showMessage(title, message, QIcon(), 10_000)
        self.window.statusBar().showMessage(message, 15_000)


def _health_data(engine: Engine, days: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    engine.feedback.sample()
    return engine.feedback.history(days), engine.feedback.drift_report()
