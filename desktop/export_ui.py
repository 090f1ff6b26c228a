"""Export, destinations and the audit trail in the window. All engine work runs off the GUI thread."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.engine import Engine
from sealroom.core.output.render import FORMATS

from .host import EngineHost
from .ops import Op, describe

LAST_CHOICE = "last_export"  # catalog meta: {"destination": ..., "format": ...}


def policy_note(settings: Any) -> str:
    """What the IT policy decides about exports, in one line (empty when nothing is set)."""
    locked = settings.locked
    notes = []
    if not settings.export_enabled:
        return "Exports are turned off by your organisation's policy."
    if "export_formats" in locked:
        notes.append("formats: " + ", ".join(FORMATS[f] for f in settings.export_formats if f in FORMATS))
    if "export_include_passages" in locked and not settings.export_include_passages:
        notes.append("file and page references only, no passage text")
    if "export_destinations" in locked:
        notes.append("only the destinations IT allows")
    return ("Set by your organisation's policy: " + "; ".join(notes) + ".") if notes else ""


class ExportDialog(QDialog):
    """Destination and format for one export; remembers the last choice."""

    def __init__(self, parent: QWidget | None, host: EngineHost, what: str) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {what}")
        self.setAccessibleName("Export")
        self.host = host
        engine = host.require_engine()
        settings = engine.settings
        self.destination = QComboBox()
        self.destination.setAccessibleName("Destination")
        self.format = QComboBox()
        self.format.setAccessibleName("Format")
        for key in settings.export_formats:
            if key in FORMATS:
                self.format.addItem(FORMATS[key], key)
        manage = QPushButton("Destinations…")
        manage.setAccessibleName("Manage export destinations")
        manage.clicked.connect(self._manage)
        row = QHBoxLayout()
        row.addWidget(self.destination, 1)
        row.addWidget(manage)
        form = QFormLayout()
        form.addRow("Send to", row)
        form.addRow("Format", self.format)
        self.note = QLabel(policy_note(settings))
        self.note.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setAccessibleName("Export now")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(
            QLabel(
                "The file is kept in the outbox until it is delivered; nothing is lost when the share is offline."
            )
        )
        layout.addWidget(self.buttons)
        self.load()

    def load(self) -> None:
        def read(engine: Engine) -> tuple[list[str], dict[str, str]]:
            names = [d.name for d in engine.output.destinations.all()]
            last = json.loads(engine.preference(LAST_CHOICE) or "{}")
            return names, last

        self.host.read(read, self._show)

    def _show(self, data: tuple[list[str], dict[str, str]]) -> None:
        names, last = data
        self.destination.clear()
        self.destination.addItems(names)
        if last.get("destination") in names:
            self.destination.setCurrentText(last["destination"])
        index = self.format.findData(last.get("format"))
        if index >= 0:
            self.format.setCurrentIndex(index)
        ready = bool(names) and self.format.count() > 0 and self.host.require_engine().settings.export_enabled
        self.export_button.setEnabled(ready)
        if not names:
            self.note.setText("No destination yet: add a folder or an SMB share with “Destinations…”.")

    def _manage(self) -> None:
        dialog = DestinationsDialog(self, self.host)
        dialog.finished.connect(lambda _: self.load())
        dialog.open()

    def choice(self) -> tuple[str, str]:
        return self.destination.currentText(), str(self.format.currentData())


class DestinationsDialog(QDialog):
    """Add (folder or SMB share; the password goes to the OS keyring), remove and test destinations."""

    def __init__(self, parent: QWidget | None, host: EngineHost) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export destinations")
        self.setAccessibleName("Export destinations")
        self.host = host
        self.list = QListWidget()
        self.list.setAccessibleName("Destinations")
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.state.setAccessibleName("Destination state")
        add_folder = QPushButton("Add folder…")
        add_folder.clicked.connect(self.add_folder)
        add_smb = QPushButton("Add SMB share…")
        add_smb.clicked.connect(self.add_smb)
        remove = QPushButton("Remove")
        remove.clicked.connect(self.remove)
        test = QPushButton("Test")
        test.clicked.connect(self.test)
        if not host.require_engine().settings.export_enabled:
            for b in (add_folder, add_smb, test):
                b.setEnabled(False)
                b.setToolTip("Exports are turned off by your organisation's policy")
        row = QHBoxLayout()
        for b in (add_folder, add_smb, remove, test):
            row.addWidget(b)
        row.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(row)
        layout.addWidget(self.state)
        layout.addWidget(close)
        self.resize(620, 360)
        self.refresh()

    def refresh(self) -> None:
        self.host.read(lambda e: [d.describe() for d in e.output.destinations.all()], self._show)

    def _show(self, lines: list[str]) -> None:
        self.list.clear()
        self.list.addItems(lines)

    def _selected(self) -> str:
        item = self.list.currentItem()
        return item.text().split(":", 1)[0] if item else ""

    def _run(self, op: Callable[[Engine], Any], done: Callable[[Any], None]) -> None:
        engine = self.host.require_engine()

        def failed(exc: BaseException) -> None:
            self.state.setText(describe(exc))

        Op(self, lambda _: op(engine), done, failed, lane="export").run()

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into this folder")
        if not folder:
            return
        suggested = folder.rstrip("/\\").rsplit("/", 1)[-1].rsplit("\\", 1)[-1] or "Folder"
        name = self.ask_name(suggested, folder)
        if name:
            self.add(name, folder=folder)

    def ask_name(self, suggested: str, folder: str) -> str:
        """The name exports will show for the destination, asked with the folder's name proposed."""
        name, ok = QInputDialog.getText(
            self,
            "Name the destination",
            f"Exports to {folder} will be listed under this name:",
            text=suggested,
        )
        return name.strip() if ok else ""

    def add_smb(self) -> None:
        dialog = SmbDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            name, url, user, password = dialog.values()
            self.add(name, smb=url, user=user, password=password)

    def add(
        self,
        name: str,
        folder: str | None = None,
        smb: str | None = None,
        user: str = "",
        password: str | None = None,
    ) -> None:
        def done(dest: Any) -> None:
            self.state.setText(
                f"Added {dest.describe()}" + (" — password kept in the OS keyring." if smb else "")
            )
            self.refresh()

        self._run(lambda e: e.output.add_destination(name, folder, smb, user, password), done)

    def remove(self) -> None:
        name = self._selected()
        if name:
            self._run(lambda e: e.output.remove_destination(name), lambda _: self.refresh())

    def test(self) -> None:
        name = self._selected()
        if name:
            self.state.setText(f"Testing {name}…")
            self._run(lambda e: e.output.test_destination(name), self.state.setText)


class SmbDialog(QDialog):
    def __init__(self, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add SMB share")
        self.name = QLineEdit()
        self.name.setAccessibleName("Destination name")
        self.url = QLineEdit()
        self.url.setPlaceholderText(r"\\server\share\folder")
        self.url.setAccessibleName("Share")
        self.user = QLineEdit()
        self.user.setAccessibleName("User name")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("Share", self.url)
        form.addRow("User", self.user)
        form.addRow("Password", self.password)
        form.addRow(QLabel("The password is kept in the OS keyring, never in a file."))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, str, str, str]:
        return (
            self.name.text().strip(),
            self.url.text().strip(),
            self.user.text().strip(),
            self.password.text(),
        )


class AuditDialog(QDialog):
    """Help → Audit trail: the recent records and whether the chain verifies."""

    def __init__(self, parent: QWidget | None, host: EngineHost) -> None:
        super().__init__(parent)
        self.setWindowTitle("Audit trail")
        self.setAccessibleName("Audit trail")
        self.host = host
        self.table = QTableWidget(0, 5)
        self.table.setAccessibleName("Audit records")
        self.table.setHorizontalHeaderLabels(["#", "Time (UTC)", "User", "Event", "Details"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for col in range(4):  # time and event shown whole ("2026-12-06T…" and "export_delive…" were cut)
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(False)
        self.verdict = QLabel("Checking the chain…")
        self.verdict.setAccessibleName("Audit verification")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addWidget(self.table)
        layout.addWidget(close)
        self.resize(900, 480)
        host.read(lambda e: (e.audit.records(200), e.audit.verify()), self._show)

    def _show(self, data: tuple[list[dict[str, Any]], Any]) -> None:
        records, result = data
        self.verdict.setText(("✔ " if result.ok else "✘ BROKEN: ") + result.message)
        self.table.setRowCount(len(records))
        for row, r in enumerate(reversed(records)):
            details = ", ".join(f"{k}={v}" for k, v in r.get("data", {}).items())
            values = [
                str(r.get("seq", "")),
                r.get("time", ""),
                r.get("user", ""),
                r.get("event", ""),
                details,
            ]
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                self.table.setItem(row, col, item)


def report_export(parent: QWidget | None, result: Any) -> str:
    """One line for the status bar about an export just made."""
    item = result.item
    if item.status == "delivered":
        return f"Exported to {item.destination}: {item.delivered_as}"
    if item.status == "pending":
        return f"Export waiting in the outbox for {item.destination} ({item.reason.removeprefix('waiting: ')}); it will be sent when the destination is back"
    QMessageBox(
        QMessageBox.Icon.Warning,
        "Export failed",
        f"{item.destination}: {item.reason}\n\nThe export stays in the outbox; fix the destination and retry.",
        parent=parent,
    ).open()
    return f"Export to {item.destination} failed: {item.reason}"
