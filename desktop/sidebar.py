"""The left pane: workspace, its watched folders with counts, its chats, and indexing."""

from __future__ import annotations

import datetime
import os
import time
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.protocols import FileRow


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def when_text(ts: float, now: float | None = None) -> str:
    """'Today 14:02', 'Yesterday 09:15', 'Mon 3 Dec' within a week, '3 Dec' this year, '3 Dec 2025'."""
    now = time.time() if now is None else now
    day = time.localtime(ts)
    today = time.localtime(now)
    days = (datetime.date(*today[:3]) - datetime.date(*day[:3])).days
    if days <= 0:
        return time.strftime("Today %H:%M", day)
    if days == 1:
        return time.strftime("Yesterday %H:%M", day)
    date = f"{day.tm_mday} {time.strftime('%b', day)}"
    if days < 7:
        return f"{time.strftime('%a', day)} {date}"
    return date if day.tm_year == today.tm_year else f"{date} {day.tm_year}"


CLI_MARK = "⌨ command line"


def chat_lines(chat: dict[str, Any], now: float | None = None) -> tuple[str, str]:
    """The two lines of a chat in the list: its title, then when it was last used, how many questions,
    and a mark when it was asked from the command line."""
    parts = [when_text(chat["last"], now)]
    if chat.get("questions", 0) > 1:
        parts.append(f"{chat['questions']} questions")
    if chat.get("origin") == "cli":
        parts.append(CLI_MARK)
    return chat["title"], " · ".join(parts)


def folder_counts_text(counts: dict[str, int]) -> str:
    parts = [f"{counts.get('indexed', 0)} indexed"]
    if counts.get("pending"):
        parts.append(f"{counts['pending']} pending")
    failed = counts.get("failed", 0) + counts.get("skipped", 0)
    if failed:
        parts.append(f"{failed} not indexed")
    return " · ".join(parts)


class Sidebar(QWidget):
    workspace_chosen = Signal(str)
    new_workspace = Signal()
    add_folder = Signal()
    folder_dropped = Signal(str)
    remove_folder = Signal(str)
    chat_chosen = Signal(int)
    rename_chat = Signal(int)
    delete_chat = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptDrops(True)
        self.workspace = QComboBox()
        self.workspace.setAccessibleName("Workspace")
        self.workspace.textActivated.connect(self.workspace_chosen)
        new_ws = QPushButton("New…")
        new_ws.setAccessibleName("New workspace")
        new_ws.clicked.connect(self.new_workspace)

        self.folders = QListWidget()
        self.folders.setAccessibleName("Watched folders")
        self.folders.setToolTip("Folders Sealroom watches. Drop a folder here to add it.")
        self.add_button = QPushButton("Add folder…")
        self.add_button.setAccessibleName("Add folder")
        self.add_button.clicked.connect(self.add_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove folder")
        self.remove_button.clicked.connect(self._remove)

        self.chat_search = QLineEdit()
        self.chat_search.setAccessibleName("Search chats")
        self.chat_search.setPlaceholderText("Search chats…")
        self.chat_search.setClearButtonEnabled(True)
        self.chat_search.textChanged.connect(self._filter_chats)
        for button in self.chat_search.findChildren(QToolButton):  # the line's clear button
            button.setAccessibleName("Clear the chat search")
        self.chats = QListWidget()
        self.chats.setAccessibleName("Chats")
        self.chats.itemClicked.connect(
            lambda item: self.chat_chosen.emit(item.data(Qt.ItemDataRole.UserRole))
        )
        self.chats.itemActivated.connect(
            lambda item: self.chat_chosen.emit(item.data(Qt.ItemDataRole.UserRole))
        )
        rename = QShortcut(QKeySequence(Qt.Key.Key_F2), self.chats)
        rename.setContext(Qt.ShortcutContext.WidgetShortcut)
        rename.activated.connect(self._rename_current)
        self.all_chats: list[dict[str, Any]] = []
        self.chats.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.chats.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.chats.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chats.customContextMenuRequested.connect(self._chat_menu)

        self.indexing = IndexingPanel()

        ws_row = QHBoxLayout()
        ws_row.addWidget(self.workspace, 1)
        ws_row.addWidget(new_ws)
        folder_buttons = QHBoxLayout()
        folder_buttons.addWidget(self.add_button)
        folder_buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(_heading("Workspace"))
        layout.addLayout(ws_row)
        layout.addWidget(_heading("Folders"))
        layout.addWidget(self.folders, 2)
        layout.addLayout(folder_buttons)
        layout.addWidget(_heading("Chats"))
        layout.addWidget(self.chat_search)
        layout.addWidget(self.chats, 3)
        layout.addWidget(self.indexing)

    def set_workspaces(self, names: list[str], current: str) -> None:
        self.workspace.clear()
        self.workspace.addItems(names)
        self.workspace.setCurrentText(current)

    def set_folders(self, counts: dict[str, dict[str, int]]) -> None:
        selected = self.selected_folder()
        self.folders.clear()
        for path, c in sorted(counts.items()):
            item = QListWidgetItem(f"{os.path.basename(path) or path}\n{folder_counts_text(c)}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            self.folders.addItem(item)
            if path == selected:
                item.setSelected(True)
        self.remove_button.setEnabled(bool(counts))

    def selected_folder(self) -> str | None:
        items = self.folders.selectedItems() or ([self.folders.item(0)] if self.folders.count() == 1 else [])
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def set_chats(self, chats: list[dict[str, Any]], current: int | None) -> None:
        """The workspace's chats (catalog chat_list rows: id, title, last, questions, origin), the most
        recently used first, filtered by the search box."""
        self.all_chats = chats
        self._fill_chats(current)

    def _fill_chats(self, current: int | None) -> None:
        words = self.chat_search.text().lower().split()
        self.chats.clear()
        for chat in self.all_chats:
            title, detail = chat_lines(chat)
            if words and not all(w in f"{title} {detail}".lower() for w in words):
                continue
            item = QListWidgetItem(f"{title}\n{detail}")
            item.setData(Qt.ItemDataRole.UserRole, chat["id"])
            item.setData(Qt.ItemDataRole.UserRole + 1, title)
            item.setToolTip(
                f"{title}\n{detail}" + ("\nAsked with `sealroom ask`" if CLI_MARK in detail else "")
            )
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{title}, {detail}")
            self.chats.addItem(item)
            if chat["id"] == current:
                item.setSelected(True)
        if words and not self.chats.count():
            empty = QListWidgetItem("No chat matches")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.chats.addItem(empty)

    def _filter_chats(self) -> None:
        selected = self.chats.selectedItems()
        self._fill_chats(selected[0].data(Qt.ItemDataRole.UserRole) if selected else None)

    def _rename_current(self) -> None:
        item = self.chats.currentItem()
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self.rename_chat.emit(item.data(Qt.ItemDataRole.UserRole))

    def chat_title(self, chat_id: int) -> str:
        return next((c["title"] for c in self.all_chats if c["id"] == chat_id), "")

    def _remove(self) -> None:
        folder = self.selected_folder()
        if folder:
            self.remove_folder.emit(folder)

    def _chat_menu(self, pos: QPoint) -> None:
        item = self.chats.itemAt(pos)
        if item is None:
            return
        chat_id = item.data(Qt.ItemDataRole.UserRole)
        if not chat_id:
            return
        menu = QMenu(self)
        menu.addAction("Rename…  (F2)", lambda: self.rename_chat.emit(chat_id))
        menu.addAction("Delete", lambda: self.delete_chat.emit(chat_id))
        menu.popup(self.chats.viewport().mapToGlobal(pos))

    # --- drag and drop folders -------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() and os.path.isdir(url.toLocalFile()) for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile() and os.path.isdir(url.toLocalFile()):
                self.folder_dropped.emit(url.toLocalFile())
        event.acceptProposedAction()


class IndexingPanel(QWidget):
    """Always visible: files done / total, the current file, pause, and what could not be indexed."""

    pause = Signal(bool)
    retry = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.status = QLabel("Starting…")
        self.status.setAccessibleName("Indexing status")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Indexing progress")
        self.bar.setTextVisible(True)
        self.current = QLabel("")
        self.current.setAccessibleName("File being indexed")
        self.current.setWordWrap(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setAccessibleName("Pause indexing")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._toggled)
        self.pause_button.setEnabled(False)  # nothing to pause until files are waiting
        self.warning = QLabel("")
        self.warning.setAccessibleName("Problems with the index")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: palette(bright-text); background: #b3261e; padding: 4px;")
        self.warning.setVisible(False)
        self.failed_title = _heading("Not indexed")
        self.failed = QListWidget()
        self.failed.setAccessibleName("Files not indexed, with reasons")
        self.failed.setWordWrap(True)
        self.failed.setMaximumHeight(130)
        self.retry_button = QPushButton("Retry failed")
        self.retry_button.setAccessibleName("Retry failed files")
        self.retry_button.clicked.connect(self.retry)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.pause_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(_heading("Indexing"))
        layout.addWidget(self.status)
        layout.addLayout(row)
        layout.addWidget(self.current)
        layout.addWidget(self.warning)
        layout.addWidget(self.failed_title)
        layout.addWidget(self.failed)
        layout.addWidget(self.retry_button)
        self.set_not_indexed([])

    def _toggled(self, paused: bool) -> None:
        if paused:
            self.pause_button.setEnabled(True)  # Resume is always possible
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setAccessibleName("Resume indexing" if paused else "Pause indexing")
        self.pause.emit(paused)

    def show_progress(self, done: int, total: int, path: str, detail: str = "") -> None:
        paused = self.pause_button.isChecked()
        if path:
            self.bar.setRange(0, max(total, 1))
            self.bar.setValue(done)
            self.bar.setFormat(f"{done} / {total} files")
            self.status.setText("Paused" if paused else f"Indexing {done} of {total} files")
            self.pause_button.setEnabled(True)
            self.current.setText(os.path.basename(path) + (f" — {detail}" if detail else ""))
            self.current.setToolTip(path)
        else:
            self.current.setText("")

    def show_totals(self, counts: dict[str, int], watching: bool, semantic: str = "") -> None:
        if self.current.text():
            return  # a run is in progress; its own numbers are on show
        total = sum(counts.values())
        self.pause_button.setEnabled(self.pause_button.isChecked() or bool(counts.get("pending")))
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(total - counts.get("pending", 0))
        self.bar.setFormat(f"{total - counts.get('pending', 0)} / {total} files")
        if not total:
            self.status.setText("No documents yet: add a folder")
        elif self.pause_button.isChecked():
            self.status.setText("Paused")
        elif counts.get("pending"):
            self.status.setText(f"{counts['pending']} files waiting")
        elif semantic:  # every file is searchable by keyword; some vectors are still being made
            self.status.setText(f"{semantic[:1].upper()}{semantic[1:]}")
        else:
            self.status.setText(
                f"Up to date · {counts.get('indexed', 0)} files" + (" · watching" if watching else "")
            )

    def set_warnings(self, warnings: list[str]) -> None:
        """Problems that do not stop Sealroom but change what it finds (a vector index being rebuilt…)."""
        self.warning.setText("\n".join(f"⚠ {w[:1].upper()}{w[1:]}" for w in warnings))
        self.warning.setVisible(bool(warnings))

    def set_not_indexed(self, rows: list[FileRow]) -> None:
        self.failed.clear()
        for row in rows:
            item = QListWidgetItem(f"{os.path.basename(row.path)} — {row.status}: {row.reason}")
            item.setToolTip(f"{row.path}\n{row.reason}")
            item.setData(Qt.ItemDataRole.UserRole, row.path)
            self.failed.addItem(item)
        self.failed_title.setText(f"Not indexed ({len(rows)})")
        for widget in (self.failed_title, self.failed):
            widget.setVisible(bool(rows))
        self.retry_button.setVisible(any(r.status == "failed" for r in rows))
