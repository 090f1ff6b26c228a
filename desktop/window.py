"""The main window: sidebar | conversation (or the welcome) | source preview."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QCursor, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.answer.pipeline import Answer, as_sentence
from sealroom.core.engine import Engine
from sealroom.core.protocols import DEFAULT_WORKSPACE, Hit, Passage
from sealroom.core.runtime import logs
from sealroom.core.runtime.errors import SealroomError

from .appearance import THEMES, Appearance
from .conversation import Conversation, Entry, answer_note, dropped_of, entry_of
from .dialogs import DiagnosticsDialog, SettingsDialog, model_title
from .export_ui import LAST_CHOICE, AuditDialog, ExportDialog, report_export
from .feedback_ui import FeedbackUi
from .host import EngineHost
from .ops import describe
from .preview import SourcePreview
from .sidebar import Sidebar

PRIVACY = "Your documents, questions and answers stay on this computer. Nothing is sent anywhere."


def hit_source(n: int, hit: Hit) -> dict[str, Any]:
    return {"n": n} | hit.to_dict()


class Welcome(QWidget):
    def __init__(self, choose: Any) -> None:
        super().__init__()
        title = QLabel("<h2>Welcome to Sealroom</h2>")
        text = QLabel(
            "Choose a folder of documents (PDF, Word, text, e-mail …). Sealroom reads them, keeps its "
            "index up to date as they change, and answers your questions with the file and page of "
            f"every source.<br><br><b>{PRIVACY}</b><br><br>You can also drop a folder on the left pane."
        )
        text.setWordWrap(True)
        self.button = QPushButton("Choose a folder…")
        self.button.setAccessibleName("Choose a first folder")
        self.button.clicked.connect(choose)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(2)
        layout.setContentsMargins(40, 20, 40, 20)


class MainWindow(QMainWindow):
    def __init__(self, host: EngineHost) -> None:
        super().__init__()
        self.host = host
        self.chat_id: int | None = None
        self.keep_watching = True
        self.quitting = False
        self.setWindowTitle("Sealroom")
        self.setWindowIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView))
        self.sidebar = Sidebar()
        self.conversation = Conversation()
        self.preview = SourcePreview()
        self.preview.problem.connect(lambda message: self.statusBar().showMessage(message, 10_000))
        self.welcome = Welcome(self.choose_folder)
        self.centre = QStackedWidget()
        self.centre.addWidget(self.conversation)
        self.centre.addWidget(self.welcome)
        self.splitter = splitter = QSplitter()
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.centre)
        splitter.addWidget(self.preview)
        # the side panes keep their width as answers stream in and chats change; the conversation takes the rest
        for index, stretch in enumerate((0, 1, 0)):
            splitter.setStretchFactor(index, stretch)
        splitter.setSizes([270, 620, 390])
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)
        self.appearance = Appearance(host.home)
        self.model_label = QLabel("Model: not loaded")
        self.model_label.setAccessibleName("Model state")
        self.outbox_label = QLabel("")
        self.outbox_label.setAccessibleName("Outbox state")
        self.alert_label = QLabel("")
        self.alert_label.setAccessibleName("Alerts")
        self.statusBar().addPermanentWidget(self.alert_label)
        self.statusBar().addPermanentWidget(self.outbox_label)
        self.statusBar().addPermanentWidget(self.model_label)
        self.delivered: set[str] | None = None  # outbox items known delivered, for notifications
        self.outbox_timer = QTimer(self)
        self.outbox_timer.setInterval(5000)
        self.outbox_timer.timeout.connect(self.refresh_outbox)
        self.statusBar().showMessage("Opening your index…")
        self._menus()
        self._connect()
        self.tray = self._tray()
        self.feedback = FeedbackUi(self, host, self.conversation)
        self.alert_label.linkActivated.connect(lambda _: self.feedback.open_health())
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setSingleShot(True)
        self.refresh_timer.setInterval(400)  # file events come in bursts: refresh counts once per burst
        self.refresh_timer.timeout.connect(self.refresh)
        self.sidebar.setEnabled(False)
        self.conversation.setEnabled(False)
        self.appearance.apply()
        self._fit_screen()
        self._focus_order()

    def _focus_order(self) -> None:
        """Tab goes where the eye does: the question, its buttons and filters, the conversation, the
        source, then the left pane from the top."""
        conv, side = self.conversation, self.sidebar
        chain = [
            conv.question,
            conv.ask_button,
            conv.search_only,
            conv.folder_filter,
            conv.type_filter,
            conv.date_filter,
            conv.transcript,
            conv.export_button,
            conv.new_button,
            self.preview.text,
            self.preview.open_button,
            side.workspace,
            side.folders,
            side.add_button,
            side.remove_button,
            side.chat_search,
            side.chats,
        ]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _fit_screen(self) -> None:
        """Four fifths of the screen, at least 1280×780 but never more than the screen's free area (a
        1366×768 laptop): nothing outside. Larger text takes the whole free area."""
        screen = self.screen().availableGeometry() if self.screen() else None
        width, height = 1280, 780
        if screen is not None:
            free_width, free_height = screen.width(), screen.height() - 40  # a title bar
            width = min(max(width, free_width * 4 // 5), free_width)
            height = min(max(height, free_height * 17 // 20), free_height)
            if self.appearance.scale > 1:
                width, height = free_width, free_height
            side = max(220, min(300, width // 5))
            preview = max(260, min(420, width * 3 // 10))
            self.splitter.setSizes([side, width - side - preview, preview])
        self.resize(width, height)

    # --- wiring -----------------------------------------------------------------------
    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        file.addAction("Add folder…", QKeySequence("Ctrl+O"), self.choose_folder)
        file.addAction("New chat", QKeySequence("Ctrl+N"), self.new_chat)
        self.export_action = file.addAction("Export chat…", QKeySequence("Ctrl+E"), self.export_chat)
        file.addAction("Export destinations…", self.open_destinations)
        file.addAction("Delete workspace…", self.delete_workspace)
        file.addSeparator()
        file.addAction("Settings…", QKeySequence("Ctrl+,"), self.open_settings)
        file.addSeparator()
        file.addAction("Quit", QKeySequence("Ctrl+Q"), self.quit)
        view = self.menuBar().addMenu("&View")
        view.addAction("Larger text", QKeySequence(QKeySequence.StandardKey.ZoomIn), lambda: self.zoom(1))
        view.addAction("Smaller text", QKeySequence(QKeySequence.StandardKey.ZoomOut), lambda: self.zoom(-1))
        view.addAction("Normal text size", QKeySequence("Ctrl+0"), lambda: self.zoom(0))
        QShortcut(QKeySequence("Ctrl+="), self, lambda: self.zoom(1))  # Ctrl + without Shift
        view.addSeparator()
        themes = view.addMenu("Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for key, label in THEMES.items():
            action = QAction(label, self, checkable=True)
            action.setChecked(key == self.appearance.theme)
            action.triggered.connect(lambda _=False, key=key: self.set_theme(key))
            group.addAction(action)
            themes.addAction(action)
            self.theme_actions[key] = action
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("Health…", lambda: self.feedback.open_health())
        help_menu.addAction("Ratings and corrections…", lambda: self.feedback.open_ratings())
        help_menu.addAction("Diagnostics…", self.open_diagnostics)
        help_menu.addAction("Audit trail…", self.open_audit)
        help_menu.addAction("About Sealroom", self.about)
        QShortcut(QKeySequence("Ctrl+K"), self, self.focus_question)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop_answer)

    def _connect(self) -> None:
        host, side, conv = self.host, self.sidebar, self.conversation
        host.started.connect(self.on_started)
        host.start_failed.connect(self.on_start_failed)
        host.progress.connect(side.indexing.show_progress)
        host.progress.connect(self._on_progress)
        host.file_event.connect(self._on_file_event)
        host.indexing_done.connect(self.refresh)
        host.indexing_done.connect(lambda: self.feedback.maybe_check_drift())
        host.indexing_done.connect(lambda: self.feedback.poll())  # alerts as they stand after a run
        host.folders_changed.connect(self.refresh)
        host.model_state.connect(self.on_model_state)
        host.watch_failed.connect(lambda why: self.statusBar().showMessage(f"Watching stopped: {why}"))
        side.add_folder.connect(self.choose_folder)
        side.folder_dropped.connect(self.add_folder)
        side.remove_folder.connect(self.remove_folder)
        side.workspace_chosen.connect(self.switch_workspace)
        side.new_workspace.connect(self.create_workspace)
        side.chat_chosen.connect(self.open_chat)
        side.rename_chat.connect(self.rename_chat)
        side.delete_chat.connect(self.delete_chat)
        side.indexing.pause.connect(host.set_paused)
        side.indexing.retry.connect(host.retry_failed)
        conv.ask.connect(self.ask)
        conv.search.connect(self.search)
        conv.regenerate.connect(self.regenerate)
        conv.copied.connect(lambda said: self.statusBar().showMessage(said, 5000))
        conv.stop.connect(self.stop_answer)
        conv.new_chat.connect(self.new_chat)
        conv.source_clicked.connect(self.show_source)
        conv.export_answer.connect(lambda answer_id: self.export("answer", answer_id))
        conv.export_chat.connect(self.export_chat)

    def _tray(self) -> QSystemTrayIcon | None:
        menu = self.tray_menu = QMenu(self)
        menu.addAction("Show Sealroom", self.bring_forward)
        self.tray_pause = QAction("Pause indexing", menu, checkable=True)
        self.tray_pause.toggled.connect(self.sidebar.indexing.pause_button.setChecked)
        self.sidebar.indexing.pause_button.toggled.connect(
            self.tray_pause.setChecked
        )  # one state, two places
        menu.addAction(self.tray_pause)
        menu.addAction("Quit", self.quit)
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        tray = QSystemTrayIcon(self.windowIcon(), self)
        tray.setContextMenu(menu)
        tray.activated.connect(self.tray_activated)
        tray.setToolTip("Sealroom")
        tray.show()
        return tray

    def tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        """A click shows the window; a right click opens the menu, also where the tray (XEmbed under a
        plain window manager) never opens it itself."""
        if reason == QSystemTrayIcon.ActivationReason.Context:
            if not self.tray_menu.isVisible():
                self.tray_menu.popup(QCursor.pos())
        else:
            self.bring_forward()

    # --- engine state -------------------------------------------------------------------
    def on_started(self) -> None:
        self.sidebar.setEnabled(True)
        self.conversation.setEnabled(True)
        self.statusBar().showMessage("Ready", 4000)
        settings = self.host.require_engine().settings
        if not settings.export_enabled:
            self.conversation.can_export = False
            self.export_action.setEnabled(False)
            self.conversation.export_button.setToolTip("Exports are turned off by your organisation's policy")
        self.refresh()
        self.new_chat()
        self.refresh_outbox()
        self.outbox_timer.start()
        self.feedback.start()

    def on_start_failed(self, why: str) -> None:
        self.statusBar().showMessage(f"Sealroom cannot open its index: {why}")
        box = QMessageBox(QMessageBox.Icon.Critical, "Sealroom cannot open its index", why, parent=self)
        box.open()

    def on_model_state(self, state: str) -> None:
        """The model line, named as Settings names it, with the context size in use."""
        text = {"loading": "Model: loading…", "not loaded": "Model: not loaded"}.get(state, f"Model: {state}")
        file = self.host.running_model
        if file:
            engine = self.host.engine
            context = f" · context {engine.settings.n_ctx:,} tokens" if engine else ""
            default = engine is not None and not engine.settings.chat_model
            text = f"Model: {model_title(file, default)}{context}"
            self.model_label.setToolTip(f"{file} is loaded and ready")
        self.model_label.setText(text)

    def _on_file_event(self, event: dict[str, Any]) -> None:
        if not self.refresh_timer.isActive():  # at most one refresh per interval, even in a long run
            self.refresh_timer.start()

    def _on_progress(self, done: int, total: int, path: str, detail: str) -> None:
        if self.tray:
            self.tray.setToolTip(
                f"Sealroom — indexing {done} of {total}" if path else "Sealroom — up to date"
            )

    def refresh(self) -> None:
        """Re-read workspaces, folder counts, chats and the not-indexed list (off the GUI thread)."""
        workspace = self.host.workspace

        def read(engine: Engine) -> dict[str, Any]:
            return {
                **engine.overview(workspace),
                "watching": engine.watch_state.running,
                "any_folder": bool(engine.folders()),
            }

        def show(data: dict[str, Any]) -> None:
            self.sidebar.set_workspaces(data["workspaces"], workspace)
            self.sidebar.set_folders(data["counts"])
            self.sidebar.set_chats(data["chats"], self.chat_id)
            self.conversation.set_folders(list(data["counts"]))
            self.sidebar.indexing.show_totals(
                data["totals"], data["watching"], data["semantic_pending"]["message"]
            )
            self.sidebar.indexing.set_not_indexed(data["not_indexed"])
            self.sidebar.indexing.set_warnings(data["warnings"])
            self.centre.setCurrentWidget(self.conversation if data["any_folder"] else self.welcome)

        self.host.read(read, show)

    # --- folders and workspaces ---------------------------------------------------------
    def choose_folder(self) -> None:
        folder = self.pick_folder()
        if folder:
            self.add_folder(folder)

    # The system's modal dialogs, in one place (tests replace these three methods).
    def pick_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Choose a folder to index", str(Path.home()))

    def confirm(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes

    def ask_text(self, title: str, label: str, text: str = "") -> str:
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value.strip() if ok else ""

    def add_folder(self, folder: str) -> None:
        self.statusBar().showMessage(f"Adding {folder}…", 3000)
        self.host.add_folder(folder, lambda path: self.statusBar().showMessage(f"Watching {path}", 5000))

    def remove_folder(self, folder: str) -> None:
        if self.confirm(
            "Remove folder",
            f"Stop watching {folder}?\n\nIts files leave the index. The files themselves are not touched.",
        ):
            self.host.remove_folder(folder)

    def switch_workspace(self, name: str) -> None:
        self.host.workspace = name
        self.new_chat()
        self.refresh()

    def create_workspace(self) -> None:
        name = self.ask_text("New workspace", "Name of the workspace:")
        if name:
            self.host.read(lambda e: e.add_workspace(name), lambda _: self.switch_workspace(name))

    def delete_workspace(self) -> None:
        name = self.host.workspace
        if name == DEFAULT_WORKSPACE:
            self.statusBar().showMessage("The default workspace cannot be deleted.", 5000)
            return
        if self.confirm(
            "Delete workspace",
            f"Delete the workspace “{name}” with its chats?\n\nIts folders leave the index; the files are not touched.",
        ):
            self.host.read(
                lambda e: e.remove_workspace(name), lambda _: self.switch_workspace(DEFAULT_WORKSPACE)
            )

    # --- chats --------------------------------------------------------------------------
    def new_chat(self) -> None:
        if self.conversation.busy:
            return
        self.chat_id = None
        self.conversation.export_button.setEnabled(False)
        self.conversation.show_chat("New chat", [])
        self.preview.clear()
        self.sidebar.chats.clearSelection()
        self.focus_question()

    def open_chat(self, chat_id: int) -> None:
        if self.conversation.busy:
            return

        def read(engine: Engine) -> tuple[str, list[Entry]]:
            title = dict(engine.chats(self.host.workspace)).get(chat_id, "Chat")
            answer_ids = engine.answer_ids(chat_id)
            ratings, ids = engine.feedback.ratings_of(answer_ids), iter(answer_ids)
            entries = []
            for role, text, cites, record in engine.transcript(chat_id):
                answer_id = next(ids, 0) if role == "assistant" else 0
                entries.append(entry_of(role, text, cites, record, answer_id, ratings.get(answer_id, "")))
            return title, entries

        def show(data: tuple[str, list[Entry]]) -> None:
            self.chat_id = chat_id
            self.conversation.export_button.setEnabled(self.conversation.can_export)
            self.conversation.show_chat(*data)
            self.preview.clear()

        self.host.read(read, show)

    def rename_chat(self, chat_id: int) -> None:
        title = self.ask_text("Rename chat", "New title:", self.sidebar.chat_title(chat_id))
        if title:
            self.host.read(lambda e: e.rename_chat(chat_id, title), lambda _: self.refresh())
            if chat_id == self.chat_id:
                self.conversation.title.setText(title)

    def delete_chat(self, chat_id: int) -> None:
        if not self.confirm("Delete chat", "Delete this chat and its answers?"):
            return
        if chat_id == self.chat_id:
            self.new_chat()
        self.host.read(lambda e: e.delete_chat(chat_id), lambda _: self.refresh())

    # --- asking -------------------------------------------------------------------------
    def focus_question(self) -> None:
        self.conversation.question.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def ask(self, question: str) -> None:
        conv = self.conversation
        conv.add(Entry("user", question))
        conv.begin_answer()
        loading = not self.host.model.startswith("ready")
        conv.set_busy(True, "Loading the model…" if loading else "Finding passages…")
        first = [True]

        def token(piece: str) -> None:
            if first[0]:
                first[0] = False
                conv.set_busy(True, "Answering… (Esc stops)")
            conv.append_token(piece)

        def answered(answer: Answer) -> None:
            new = self.chat_id is None
            self.chat_id = answer.chat_id
            record = answer.to_dict()
            entry = conv.entries[-1]
            entry.answer_id, entry.trace_id, entry.question = answer.answer_id, answer.trace_id, question
            entry.sources = [{**h.to_dict(), "n": n} for n, h in enumerate(answer.sources, 1)]
            conv.export_button.setEnabled(conv.can_export)
            conv.finish_answer(answer.text, answer.citations, answer_note(record), dropped_of(record))
            if answer.weak:  # declined: the quotes are the closest passages, not citations of an answer
                conv.set_chips(answer.citations, "Closest passages:")
            elif not answer.citations and answer.sources:
                conv.set_chips([hit_source(n, h) for n, h in enumerate(answer.sources, 1)], "Passages found:")
            conv.set_busy(False, f"Answered in {answer.timings.get('total_ms', 0) / 1000:.1f} s")
            if new:
                conv.title.setText(question[:80])
                self.refresh()

        def failed(exc: BaseException) -> None:
            conv.finish_answer(conv.entries[-1].text, [], describe(exc))
            conv.set_busy(False, "")

        self.host.ask(question, self.chat_id, token, answered, failed)

    def regenerate(self, index: int) -> None:
        """Ask an answer's question again in its chat (after a change to the folders or settings, say)."""
        question = self.conversation.entries[index].question
        if question and not self.conversation.busy:
            self.ask(question)

    def search(self, query: str, filters: dict[str, Any] | None = None) -> None:
        conv = self.conversation
        conv.set_busy(True, "Searching…")
        filters = filters or {}

        def found(hits: list[Hit]) -> None:
            sources = [hit_source(n, h) for n, h in enumerate(hits, 1)]
            notice = self.host.search_notice  # team mode: the team index busy or out of reach
            conv.add(Entry("search", query, sources, as_sentence(notice), filters=filters.get("said", "")))
            conv.set_chips(sources, "Passages:")
            passages = f"{len(hits)} passage{'' if len(hits) == 1 else 's'}"
            conv.set_busy(False, passages + (f" — {notice}" if notice else ""))

        self.host.search(query, found, filters)

    def stop_answer(self) -> None:
        if self.conversation.busy:
            self.host.stop_answer()
            self.conversation.set_busy(True, "Stopping…")

    def show_source(self, source: dict[str, Any]) -> None:
        self.preview.show_loading(source)
        if not source.get("sha256"):
            self.preview.show_passage(source, None)
            return
        if source.get("origin") == "team":  # read from the team service, behind the user's wall

            def from_team(engine: Engine) -> tuple[Passage | None, str]:
                try:
                    found = engine.answering.team_passage(
                        source["sha256"], source["seq"], source["start"], source["end"]
                    )
                    return found, ""
                except SealroomError as exc:
                    return None, f"The quoted text only: {exc}"

            self.host.read(from_team, lambda found: self.preview.show_passage(source, *found))
            return

        def read(engine: Engine) -> Any:
            return engine.passage(source["sha256"], source["seq"], source["start"], source["end"])

        self.host.read(read, lambda passage: self.preview.show_passage(source, passage))

    # --- dialogs and window ----------------------------------------------------------------
    def open_settings(self) -> None:
        if self.host.engine is None:
            return
        dialog = SettingsDialog(self, self.host)
        dialog.accepted.connect(lambda: self.feedback.maybe_check_drift())  # a change may change answers
        dialog.open()

    # --- export and audit ------------------------------------------------------------------
    def export_chat(self) -> None:
        if self.chat_id is not None:
            self.export("chat", self.chat_id)

    def export(self, kind: str, ident: int) -> None:
        """Ask for destination and format, then export off the GUI thread and say what happened."""
        if self.host.engine is None or not ident:
            return
        dialog = ExportDialog(self, self.host, "this chat" if kind == "chat" else "this answer")
        dialog.accepted.connect(lambda: self._export(kind, ident, *dialog.choice()))
        dialog.open()

    def _export(self, kind: str, ident: int, destination: str, fmt: str) -> None:
        from .ops import Op

        engine = self.host.require_engine()
        self.statusBar().showMessage(f"Exporting to {destination}…")

        def work(_: Any) -> Any:
            engine.remember(LAST_CHOICE, json.dumps({"destination": destination, "format": fmt}))
            if kind == "chat":
                return engine.output.export(destination, fmt, chat_id=ident)
            return engine.output.export(destination, fmt, answer_id=ident)

        def done(result: Any) -> None:
            if self.delivered is not None:  # said here already: no second notice from the outbox poll
                self.delivered.add(result.item.id)
            self.statusBar().showMessage(report_export(self, result), 15_000)
            self.refresh_outbox()

        Op(self, work, done, lane="export").run()

    def refresh_outbox(self) -> None:
        """The outbox line in the status bar, and a notice for each export delivered meanwhile."""

        def read(engine: Engine) -> tuple[list[str], list[tuple[str, str, str]]]:
            items = engine.output.outbox.items("delivered")
            return engine.output.state(), [(i.id, i.destination, i.delivered_as) for i in items]

        def show(data: tuple[list[str], list[tuple[str, str, str]]]) -> None:
            lines, delivered = data
            self.outbox_label.setText(" · ".join(lines))
            self.outbox_label.setToolTip("\n".join(lines))
            known = self.delivered
            self.delivered = {d[0] for d in delivered}
            if known is None:
                return
            for ident, destination, name in delivered:
                if ident not in known:
                    message = f"Delivered to {destination}: {name}"
                    self.statusBar().showMessage(message, 15_000)
                    if self.tray:
                        self.tray.showMessage("Sealroom", message, QIcon(), 5000)

        self.host.read(read, show)

    def open_destinations(self) -> None:
        from .export_ui import DestinationsDialog

        if self.host.engine is not None:
            DestinationsDialog(self, self.host).open()

    def about(self) -> None:
        from sealroom.core.runtime.paths import sealroom_version

        QMessageBox.about(self, "Sealroom", f"<b>Sealroom {sealroom_version()}</b><br><br>{PRIVACY}")

    def open_audit(self) -> None:
        if self.host.engine is not None:
            AuditDialog(self, self.host).open()

    def open_diagnostics(self) -> None:
        if self.host.engine is None:
            return
        DiagnosticsDialog(self, self.host).open()

    def bring_forward(self) -> None:
        logs.event("window brought forward")
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.tray and self.keep_watching and not self.quitting:
            event.ignore()
            self.hide()
            self.tray.showMessage(
                "Sealroom", "Still watching your folders. Quit from this icon.", QIcon(), 3000
            )
            return
        # the user closed the window (the window manager's ✕, Alt+F4), not a program: ask first
        asked = event.spontaneous() and not self.quitting and self.host.engine is not None
        if asked and not self.confirm_quit():
            event.ignore()
            return
        self.quitting = True
        self.host.shutdown()
        event.accept()
        QApplication.quit()

    def confirm_quit(self) -> bool:
        """No tray to keep watching from: closing stops watching, and the user is told so first."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Quit Sealroom?",
            "Closing the window quits Sealroom: your folders are not watched until you open it again. "
            "Changes made meanwhile are indexed at the next start.",
            parent=self,
        )
        quit_button = box.addButton("Quit", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep open", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(quit_button)
        box.exec()
        return box.clickedButton() is quit_button

    # --- appearance -----------------------------------------------------------------------
    def zoom(self, step: int) -> None:
        """Text larger (1), smaller (-1) or back to normal (0), kept for the next start."""
        self.appearance.zoom(step)
        self.statusBar().showMessage(f"Text size {self.appearance.scale:.0%}", 3000)
        self.conversation.redraw()

    def set_theme(self, key: str) -> None:
        self.appearance.set_theme(key)
        self.theme_actions[key].setChecked(True)
        self.conversation.redraw()

    def quit(self) -> None:
        self.quitting = True
        self.close()
