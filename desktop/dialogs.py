"""Settings and diagnostics. Both read and write through the engine host, off the GUI thread."""

from __future__ import annotations

import html
import time
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.engine import Engine
from sealroom.core.runtime import config, logs

from .host import EngineHost
from .ops import Op, show_error

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def human_size(size: int) -> str:
    """Decimal units, as the command line prints them (1 MB = 1,000,000 bytes)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def model_title(file: str, default: bool = False) -> str:
    """A chat model as the status bar and Settings both name it: the file's name without '.gguf', and
    'compact copy' for the shipped default as it runs (its context trimmed copy, models/compact.py)."""
    name = file.rsplit("/", 1)[-1].removesuffix(".gguf")
    compact = name.endswith("-compact")
    name = name.removesuffix("-compact")
    marks = [m for m, on in (("default", default), ("compact copy", compact)) if on]
    return name + (f" ({', '.join(marks)})" if marks else "")


class SettingsDialog(QDialog):
    def __init__(self, parent: QWidget | None, host: EngineHost) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.host = host
        engine = host.require_engine()
        self.settings = engine.settings
        self.models: list[Any] = []

        self.table = QTableWidget(0, 5)
        self.table.setAccessibleName("Chat models")
        self.table.setHorizontalHeaderLabels(["Model", "Size", "Trained context", "sha256", "File"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.add_model = QPushButton("Add GGUF file…")
        self.add_model.setAccessibleName("Add a GGUF model file")
        self.add_model.clicked.connect(self._add_model)
        self.threads = QSpinBox()
        self.threads.setAccessibleName("Threads")
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("All cores")
        self.threads.setValue(self.settings.n_threads)
        self.ctx = QSpinBox()
        self.ctx.setAccessibleName("Context size in tokens")
        self.ctx.setSuffix(" tokens")
        self.ctx.setGroupSeparatorShown(True)  # "2,048 tokens", as the status bar says it
        self.ctx.setToolTip(
            "How much of the model's trained context Sealroom uses for sources and the answer: "
            "more reads more passages at once and needs more memory"
        )
        self.ctx.setRange(512, 131072)
        self.ctx.setSingleStep(512)
        self.ctx.setValue(self.settings.n_ctx)
        self.log_level = QComboBox()
        self.log_level.setAccessibleName("Log level")
        self.log_level.addItems(LOG_LEVELS)
        self.log_level.setCurrentText(self.settings.log_level.upper())
        embedding = QLabel(f"{engine.embedding_model()} (built in)")
        embedding.setAccessibleName("Embedding model")
        embedding.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        location = QLabel(str(engine.home))
        location.setAccessibleName("Data location")
        location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        open_location = QPushButton("Open")
        open_location.setAccessibleName("Open the data folder")
        open_location.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(engine.home))))
        where = QHBoxLayout()
        where.addWidget(location, 1)
        where.addWidget(open_location)

        for key, widget in (
            ("chat_model", self.table),
            ("chat_model", self.add_model),
            ("n_threads", self.threads),
            ("n_ctx", self.ctx),
            ("log_level", self.log_level),
        ):
            if key in self.settings.locked:
                widget.setEnabled(False)
                widget.setToolTip("Set by your organisation's policy")

        form = QFormLayout()
        form.addRow("Threads", self.threads)
        form.addRow("Context used", self.ctx)
        form.addRow("Embedding model", embedding)
        form.addRow("Data location", where)
        form.addRow("Log level", self.log_level)
        destinations = QPushButton("Export destinations…")
        destinations.setAccessibleName("Export destinations")
        destinations.clicked.connect(self._destinations)
        form.addRow("Export", destinations)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Chat model</b> (GGUF; the default is preselected)"))
        layout.addWidget(self.table)
        layout.addWidget(self.add_model, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(820, 480)
        host.read(lambda e: e.models(), self._show_models)

    def _destinations(self) -> None:
        from .export_ui import DestinationsDialog

        DestinationsDialog(self, self.host).open()

    def _show_models(self, models: list[Any]) -> None:
        self.models = models
        chosen = self.settings.chat_model
        self.table.setRowCount(len(models))
        running = self.host.running_model
        for row, m in enumerate(models):
            name = model_title(m.name, m.default)
            if m.default and running.endswith("-compact.gguf"):
                name = model_title(running, True)  # the copy that runs, as the status bar says
            cells = [name, human_size(m.size), str(m.context_length or "?"), m.sha256[:16] + "…", m.path]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(m.sha256 if col == 3 else m.path)
                self.table.setItem(row, col, item)
            if (not chosen and m.default) or chosen in (m.path, m.sha256):
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()

    def _add_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.add_model.setEnabled(False)
            self.add_model.setText("Checking the file…")

            def added(_: Any) -> None:
                self.add_model.setEnabled(True)
                self.add_model.setText("Add GGUF file…")
                self.host.read(lambda e: e.models(), self._show_models)

            def failed(exc: BaseException) -> None:
                added(None)
                show_error(self, exc)

            engine = self.host.require_engine()
            Op(self, lambda _: engine.add_model(path), added, failed).run()

    def chosen_model(self) -> str:
        rows = self.table.selectionModel().selectedRows()
        if not rows or not self.models:
            return self.settings.chat_model
        model = self.models[rows[0].row()]
        return "" if model.default else model.path

    def changes(self) -> dict[str, Any]:
        wanted = {
            "chat_model": self.chosen_model(),
            "n_threads": self.threads.value(),
            "n_ctx": self.ctx.value(),
            "log_level": self.log_level.currentText(),
        }
        return {
            k: v
            for k, v in wanted.items()
            if v != getattr(self.settings, k) and k not in self.settings.locked
        }

    def _save(self) -> None:
        changes = self.changes()
        if not changes:
            self.accept()
            return
        engine = self.host.require_engine()

        def save(_: Any) -> None:
            engine.apply_settings(config.save_user_settings(changes))

        def saved(_: Any) -> None:
            if {"chat_model", "n_ctx", "n_threads"} & set(changes):
                self.host.load_model()
            self.accept()

        Op(self, save, saved).run()


def _indexing_state(paused: bool, pending: int) -> str:
    """The same states as the sidebar shows (paused, files waiting, up to date), never "active" while idle."""
    if paused:
        return f"paused ({pending} files waiting)" if pending else "paused"
    return f"indexing ({pending} files waiting)" if pending else "up to date"


def diagnostics_report(engine: Engine, model_state: str) -> str:
    """Engine status, watcher health, recent problems and where the logs are, as HTML."""
    overview = engine.overview()
    counts = overview["totals"]
    state = engine.watch_state
    watcher = "not running"
    if state.running:
        watcher = "running" if state.healthy else "stopped unexpectedly (restart the app)"
    last = time.strftime("%H:%M:%S", time.localtime(state.last_index)) if state.last_index else "not yet"
    rows = [
        ("Data folder", str(engine.home) + "".join(f" — warning: {w}" for w in engine.warnings())),
        ("Files", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"),
        ("Passages in the index", str(overview["chunks"])),
        ("Embedding model", overview["embedding_model"] or "not loaded yet"),
        ("Chat model", model_state),
        ("Indexing", _indexing_state(engine.paused.is_set(), counts.get("pending", 0))),
        ("Folder watcher", watcher),
        ("Last index pass", last),
        (
            "Watched folders",
            "\n".join(f + (" (polling)" if f in state.polling else "") for f in state.folders) or "none",
        ),
        ("Log file", str(engine.log_path)),
    ]
    out = (
        "<table cellpadding='3'>"
        + "".join(f"<tr><td><b>{k}</b></td><td>{_html_lines(v)}</td></tr>" for k, v in rows)
        + "</table>"
    )
    problems = [*state.errors[-10:]]
    for entry in logs.recent_problems(engine.log_path, 15):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.get("ts", 0)))
        detail = entry.get("reason") or entry.get("detail") or entry.get("address") or ""
        where = entry.get("path", "")
        problems.append(f"{when} {entry.get('level', '')}: {entry.get('msg', '')} {where} {detail}".strip())
    out += "<h4>Recent problems</h4>"
    out += (
        "<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>"
        if problems
        else "<p>None.</p>"
    )
    return out


def _html_lines(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


class DiagnosticsDialog(QDialog):
    def __init__(self, parent: QWidget | None, host: EngineHost) -> None:
        super().__init__(parent)
        self.setWindowTitle("Diagnostics")
        self.host = host
        self.report = QTextBrowser()
        self.report.setAccessibleName("Diagnostics report")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        logs_button = QPushButton("Open logs folder")
        logs_button.setAccessibleName("Open logs folder")
        engine = host.require_engine()
        logs_button.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(engine.log_path.parent)))
        )
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(refresh)
        row.addWidget(logs_button)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.report)
        layout.addLayout(row)
        self.resize(760, 520)
        self.refresh()

    def refresh(self) -> None:
        model = self.host.model
        self.host.read(lambda e: diagnostics_report(e, model), self.report.setHtml)
