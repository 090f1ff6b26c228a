"""The feedback loop in the real window on the real engine: rate an answer not helpful and pick the passage
that does answer; the same question is then answered from that correction; the rating joins the regression
set (`eval --feedback` counts it); switching the chat model runs the drift check by itself, and the Health
window shows the report item by item; "Why this answer?" shows the answer's stages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QDialogButtonBox

from sealroom.core.components import model_cache
from sealroom.core.runtime.config import load_settings, save_user_settings
from sealroom.desktop.dialogs import SettingsDialog
from sealroom.desktop.window import MainWindow
from sealroom.models.compact import COMPACT_NAME
from tests.conftest import cli_json
from tests.desktop.conftest import WAIT_MS

pytestmark = pytest.mark.slow

QUESTION = "What is the rotational life of the wirewound potentiometer?"


def click_link(window: MainWindow, text: str, nth: int = -1) -> None:
    """Click the `nth` link whose text is `text` in the transcript, as a user would."""
    view = window.conversation.transcript
    doc, places = view.document(), []
    cursor = doc.find(text)
    while not cursor.isNull():
        places.append(cursor.selectionStart())
        cursor = doc.find(text, cursor)
    assert places, f"no link {text!r} in {view.toPlainText()!r}"
    at = QTextCursor(doc)
    at.setPosition(places[nth] + 1)
    from pytestqt.qtbot import QtBot

    QtBot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.cursorRect(at).center())


def ask(window: MainWindow, qtbot, question: str) -> None:
    conv = window.conversation
    qtbot.waitUntil(lambda: not conv.busy, timeout=WAIT_MS)
    conv.question.setPlainText(question)
    qtbot.keyClick(conv.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: conv.busy, timeout=5_000)
    qtbot.waitUntil(lambda: not conv.busy, timeout=WAIT_MS)


def index_and_ask(window: MainWindow, docs: Path, qtbot) -> None:
    window.add_folder(str(docs))
    qtbot.waitUntil(lambda: window.sidebar.folders.count() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "4 indexed" in window.sidebar.folders.item(0).text(), timeout=WAIT_MS)
    ask(window, qtbot, QUESTION)


def test_rate_correct_and_check_drift_in_the_window(window: MainWindow, docs: Path, home: Path, qtbot):
    conv, feedback = window.conversation, window.feedback
    engine = window.host.require_engine()
    index_and_ask(window, docs, qtbot)
    first = conv.entries[-1]
    assert first.answer_id and first.trace_id and first.sources
    assert "Helpful · Not helpful… · Why this answer?" in conv.transcript.toPlainText()

    # "Why this answer?" shows each stage with what it chose
    click_link(window, "Why this answer?")
    qtbot.waitUntil(lambda: getattr(feedback, "trace_dialog", None) is not None, timeout=10_000)
    stages = feedback.trace_dialog.findChild(type(conv.transcript)).toPlainText()
    for stage in ("Retrieve passages", "Choose the quotes", "Check each sentence against the quotes"):
        assert stage in stages, stages
    assert "kept: unreadablemetadata.pdf, p. 1" in stages  # passages by file and page, not by chunk id
    feedback.trace_dialog.reject()

    # not helpful: the wrong source; the user searches for the passage that does answer and picks it
    click_link(window, "Not helpful…")
    qtbot.waitUntil(lambda: getattr(feedback, "dialog", None) is not None and feedback.dialog.isVisible())
    dialog = feedback.dialog
    offered = dialog.passages.count()
    assert offered == 1 + len(
        [s for s in first.sources if s.get("chunk_id")]
    )  # "(no passage)" and each source
    dialog.reason.setCurrentIndex(dialog.reason.findData("wrong_source"))
    qtbot.keyClicks(dialog.query, "better than ugly")
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.passages.count() > offered, timeout=30_000)
    assert "google-doc-document.pdf" in dialog.passages.currentItem().text()
    reason, passage, _ = dialog.choice()
    assert reason == "wrong_source" and passage
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).buttons()[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: first.rating == "bad: wrong_source", timeout=10_000)
    assert len(engine.feedback.all(removed=True)) == 1  # Enter in the search field searched; it did not save
    assert "You rated this not helpful (it cites the wrong source)" in conv.transcript.toPlainText()

    # the same question next time is answered from the correction, and says so
    ask(window, qtbot, QUESTION.lower().rstrip("?"))
    again = conv.entries[-1]
    assert "Answered from your correction of" in again.note
    assert f"{again.citations[0]['sha256'][:32]}-{again.citations[0]['seq']}" == passage
    assert again.citations[0]["path"].endswith("google-doc-document.pdf")
    engine = window.host.require_engine()
    qtbot.waitUntil(
        lambda: not feedback.checking and len(engine.feedback.ratings.runs(5)) >= 1, timeout=WAIT_MS
    )
    assert engine.feedback.due() == ""  # the rating joined the baseline by itself

    # switching the chat model (to a GGUF the user adds) runs the drift check by itself
    compact = model_cache() / COMPACT_NAME  # the copy the default runs as, added as a model of its own
    engine.add_model(str(compact))
    window.open_settings()
    qtbot.waitUntil(lambda: bool(window.findChildren(SettingsDialog)), timeout=5_000)
    settings = window.findChildren(SettingsDialog)[-1]
    qtbot.waitUntil(lambda: settings.table.rowCount() >= 2, timeout=10_000)
    models = settings.models
    row = next(r for r, m in enumerate(models) if not m.default and m.path.endswith("-compact.gguf"))
    settings.table.selectRow(row)
    qtbot.mouseClick(settings.findChild(QDialogButtonBox).buttons()[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.settings.chat_model.endswith("-compact.gguf"), timeout=10_000)
    qtbot.waitUntil(lambda: engine.feedback.drift_report() is not None, timeout=WAIT_MS)
    report = engine.feedback.drift_report()
    assert report["changes"]["chat_model"][1].endswith("-compact.gguf")
    [item] = report["items"]
    assert item["question"] == QUESTION and {"passed", "answer", "model"} <= item["before"].keys()
    assert item["after"]["model"].endswith("-compact.gguf") or item["after"]["model"] == ""

    # Help › Health shows it
    window.feedback.open_health()
    qtbot.waitUntil(lambda: feedback.health is not None and feedback.health.isVisible(), timeout=10_000)
    assert feedback.health.windowTitle() == "Health — Sealroom"
    feedback.health.close()
    window.host.shutdown()
    qtbot.waitUntil(lambda: not (home / "owner.json").exists(), timeout=30_000)  # the engine closed
    result = cli_json(home, "eval", "--feedback")  # the window is closed: the command line counts it too
    assert result["items"] == 1 and result["results"][0]["expect"] == "passage"


def test_ratings_and_corrections_are_listed_and_removed_in_the_window(window: MainWindow, docs: Path, qtbot):
    conv, feedback = window.conversation, window.feedback
    engine = window.host.require_engine()
    index_and_ask(window, docs, qtbot)
    click_link(window, "Helpful", nth=0)  # (find is case-blind: the first is the link "Helpful")
    qtbot.waitUntil(lambda: conv.entries[-1].rating == "good", timeout=10_000)
    assert "You rated this helpful" in conv.transcript.toPlainText()
    qtbot.waitUntil(lambda: not feedback.checking and bool(engine.feedback.ratings.runs(1)), timeout=WAIT_MS)

    # a worse setting: the check runs, the regression asks at once, and "Go back" restores the setting
    engine.apply_settings(save_user_settings({"min_evidence": 0.95}))
    feedback.maybe_check_drift()
    qtbot.waitUntil(lambda: getattr(feedback, "revert_box", None) is not None, timeout=WAIT_MS)
    box = feedback.revert_box
    assert box.text().startswith("Regression: 0 of 1 saved questions right after min evidence 0.3 → 0.95")
    assert "min_evidence = 0.3" in box.informativeText()
    go = next(b for b in box.buttons() if b.text() == "Go back")
    qtbot.mouseClick(go, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.settings.min_evidence == 0.3, timeout=10_000)
    assert load_settings().min_evidence == 0.3  # saved, not only applied
    assert not [a for a in engine.feedback.alerts() if a.kind == "drift_regression"]
    feedback.open_ratings()
    dialog = feedback.ratings_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    assert dialog.table.item(0, 1).text() == QUESTION and dialog.table.item(0, 2).text() == "helpful"
    dialog.table.selectRow(0)
    qtbot.mouseClick(dialog.remove, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 0 and dialog.empty.isVisible(), timeout=10_000)
    assert engine.feedback.all() == []
    dialog.reject()
    qtbot.waitUntil(lambda: "You rated this helpful" not in conv.transcript.toPlainText(), timeout=10_000)
