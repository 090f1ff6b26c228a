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


def window_day() -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime())
