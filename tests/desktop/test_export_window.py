"""Export from the real window: an answer and a chat to a folder, the outbox line, the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, QUrl

from sealroom.desktop.export_ui import AuditDialog, ExportDialog
from sealroom.desktop.window import MainWindow
from tests.output.records import store_answer


def _dialog(window: MainWindow, qtbot) -> ExportDialog:
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(ExportDialog)), timeout=10_000)
    dialog = next(d for d in window.findChildren(ExportDialog) if d.isVisible())
    qtbot.waitUntil(lambda: dialog.destination.count() > 0, timeout=10_000)
    return dialog


def test_export_an_answer_and_a_chat_from_the_window(window: MainWindow, tmp_path: Path, qtbot):
    engine = window.host.require_engine()
    chat, answer = store_answer(engine, 10)
    out = tmp_path / "shared-drive"
    out.mkdir()
    engine.output.add_destination("Team drive", folder=str(out))
    engine.output.add_destination("Stick", folder=str(tmp_path / "unplugged"))
    window.open_chat(chat)
    conv = window.conversation
    qtbot.waitUntil(lambda: conv.export_button.isEnabled() and bool(conv.entries), timeout=10_000)
    assert conv.entries[-1].answer_id == answer
    assert "export:1" in conv.transcript.toHtml()  # the answer's own Export… link

    conv.transcript.anchorClicked.emit(QUrl("export:1"))
    dialog = _dialog(window, qtbot)
    dialog.destination.setCurrentText("Team drive")
    dialog.format.setCurrentIndex(dialog.format.findData("docx"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(list(out.glob("*.docx"))), timeout=20_000)
    qtbot.waitUntil(
        lambda: window.statusBar().currentMessage().startswith("Exported to Team drive"), timeout=10_000
    )
    assert next(out.glob("*.docx")).name == f"{window_day()}-answer-{answer}.docx"  # no question words

    qtbot.mouseClick(conv.export_button, Qt.MouseButton.LeftButton)  # the whole chat
    dialog = _dialog(window, qtbot)
    assert (
        dialog.destination.currentText() == "Team drive" and dialog.format.currentData() == "docx"
    )  # remembered
    dialog.destination.setCurrentText("Stick")
    dialog.format.setCurrentIndex(dialog.format.findData("json"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "1 export waiting for Stick" in window.outbox_label.text(), timeout=20_000)
    assert "offline" in window.outbox_label.text()
    assert "waiting in the outbox" in window.statusBar().currentMessage()

    (tmp_path / "unplugged").mkdir()  # the stick is back: the courier delivers, the window says so
    engine.output.deliver(force=True)
    window.refresh_outbox()
    qtbot.waitUntil(lambda: window.outbox_label.text() == "", timeout=10_000)
    assert window.statusBar().currentMessage().startswith("Delivered to Stick:")
    exported = json.loads(next((tmp_path / "unplugged").glob("*.json")).read_text())
    assert exported["kind"] == "chat" and len(exported["answers"][0]["citations"]) == 10

    window.open_audit()
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(AuditDialog)), timeout=10_000)
    audit = next(d for d in window.findChildren(AuditDialog) if d.isVisible())
    qtbot.waitUntil(lambda: audit.table.rowCount() > 0, timeout=10_000)
    assert audit.verdict.text().startswith("✔ OK")
    events = [audit.table.item(r, 3).text() for r in range(audit.table.rowCount())]
    assert events[0] == "export_delivered" and events.count("export_queued") == 2
    metrics = audit.table.fontMetrics()
    for col in (1, 3):  # the time and the event are shown whole, not "2026-12-06T…" or "export_delive…"
        widest = max(
            metrics.horizontalAdvance(audit.table.item(r, col).text()) for r in range(audit.table.rowCount())
        )
        assert audit.table.columnWidth(col) >= widest, col


def window_day() -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime())


def test_a_destination_added_from_a_folder_is_named_by_the_user(
    window: MainWindow, tmp_path: Path, qtbot, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    from sealroom.desktop.export_ui import DestinationsDialog

    share = tmp_path / "share-legal"
    share.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(share))
    dialog = DestinationsDialog(window, window.host)
    qtbot.addWidget(dialog)
    offered: list[tuple[str, str]] = []
    monkeypatch.setattr(
        dialog, "ask_name", lambda name, folder: offered.append((name, folder)) or "Legal team"
    )
    dialog.add_folder()
    qtbot.waitUntil(lambda: dialog.list.count() == 1, timeout=10_000)
    assert offered == [("share-legal", str(share))]  # the folder's name is only proposed
    assert dialog.list.item(0).text().startswith("Legal team:")
    monkeypatch.setattr(dialog, "ask_name", lambda name, folder: "")  # cancelled: nothing is added
    dialog.add_folder()
    qtbot.wait(300)
    assert [d.name for d in window.host.engine.output.destinations.all()] == ["Legal team"]
