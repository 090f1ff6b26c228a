"""Drive the real window: add a folder, watch it index, ask, follow a citation, stop an answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLabel

from sealroom.desktop.window import MainWindow
from tests.desktop.conftest import WAIT_MS, Heartbeat

pytestmark = pytest.mark.slow

QUESTION = "What is the rotational life of the wirewound potentiometer?"


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_add_folder_index_ask_and_follow_a_citation(window: MainWindow, docs: Path, qtbot, monkeypatch):
    side, conv, preview = window.sidebar, window.conversation, window.preview
    qtbot.waitUntil(lambda: window.centre.currentWidget() is window.welcome, timeout=10_000)
    welcome_text = " ".join(label.text() for label in window.welcome.findChildren(QLabel))
    assert "Nothing is sent anywhere" in welcome_text

    progress: list[tuple[int, int, str]] = []
    window.host.progress.connect(lambda d, t, p, _: progress.append((d, t, p)))
    heartbeat = Heartbeat()
    heartbeat.start()
    monkeypatch.setattr(window, "pick_folder", lambda: str(docs))  # the system's folder picker is modal
    qtbot.mouseClick(window.welcome.button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: side.folders.count() == 1 and "7" in side.indexing.bar.format(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: side.indexing.status.text().startswith("Up to date"), timeout=WAIT_MS)
    indexing_stall = heartbeat.stop()
    assert window.centre.currentWidget() is conv
    assert any(path and total == 7 for _, total, path in progress), (
        progress
    )  # done / total and the file shown
    assert "4 indexed" in side.folders.item(0).text() and "3 not indexed" in side.folders.item(0).text()
    reasons = [side.indexing.failed.item(i).text() for i in range(side.indexing.failed.count())]
    assert any("libreoffice-writer-password.pdf — skipped: encrypted" in r for r in reasons), reasons
    assert any("grayscale-image.pdf — skipped: no text found by OCR" in r for r in reasons), reasons
    assert any(r.startswith("broken.pdf — failed:") for r in reasons), reasons
    assert side.indexing.retry_button.isVisible()

    tokens: list[str] = []
    original = conv.append_token
    monkeypatch.setattr(conv, "append_token", lambda piece: (tokens.append(piece), original(piece)))
    heartbeat.start()
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert conv.question.hasFocus()
    qtbot.keyClicks(conv.question, QUESTION)
    qtbot.keyClick(conv.question, Qt.Key.Key_Return)
    assert conv.busy and conv.stop_button.isVisible()
    qtbot.waitUntil(lambda: not conv.busy, timeout=WAIT_MS)
    answering_stall = heartbeat.stop()
    print(f"\nlongest GUI-thread stall: indexing {indexing_stall} ms, answering {answering_stall} ms")

    answer = conv.entries[-1]
    assert tokens[0].startswith("What the sources say:")  # the evidence first, at once
    assert _flat(answer.text) == _flat("".join(tokens))  # then only verified sentences, streamed
    assert answer.citations, answer
    cited = answer.citations[0]
    assert cited["path"].endswith("unreadablemetadata.pdf") and cited["page"] == 1
    quote = _flat(cited["text"].split(" … ")[0])
    if answer.dropped:  # sentences not found in the sources are behind a marked toggle, not in the answer
        assert "not found in the sources" in conv.transcript.toPlainText()
        assert all(_flat(d["text"]) not in _flat(answer.text) for d in answer.dropped)
    model = (
        "Model: gemma-3-270m-q4_k_m (default, compact copy) · context 2,048 tokens"  # as Settings names it
    )
    assert window.model_label.text() == model
    assert window.model_label.toolTip() == "gemma-3-270m-q4_k_m-compact.gguf is loaded and ready"
    qtbot.waitUntil(lambda: side.chats.count() == 1, timeout=10_000)  # the chat is stored with its answer
    assert side.chats.item(0).text().splitlines()[0] == conv.title.text()

    # click the inline [n] marker in the transcript, as a user would
    doc = conv.transcript.document()
    found = doc.find(f"[{cited['n']}]")
    assert not found.isNull()
    at = QTextCursor(doc)
    at.setPosition(found.selectionStart() + 1)
    point = conv.transcript.cursorRect(at).center()
    qtbot.mouseClick(conv.transcript.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: bool(preview.highlighted), timeout=10_000)
    assert preview.heading.text() == "unreadablemetadata.pdf — page 1"
    assert _flat(preview.highlighted) == quote  # the evidence sentence precisely, not the whole page
    assert preview.open_button.isEnabled()

    # and the chip under the answer shows the same passage
    preview.text.clear()
    qtbot.mouseClick(conv.chip_buttons[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(preview.highlighted), timeout=10_000)
    assert _flat(preview.highlighted) == quote
    conv.new_chat.emit()  # another chat: the previous answer's passage does not linger
    assert not preview.highlighted and preview.heading.text() == "Sources"
    assert indexing_stall < 1000 and answering_stall < 1000  # a freeze guard; the target is in the note


def test_escape_stops_an_answer_and_keeps_what_was_said(window: MainWindow, docs: Path, qtbot, monkeypatch):
    conv = window.conversation
    window.add_folder(str(docs))
    qtbot.waitUntil(lambda: window.sidebar.folders.count() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "4 indexed" in window.sidebar.folders.item(0).text(), timeout=WAIT_MS)
    tokens: list[str] = []
    original = conv.append_token

    def token_then_escape(piece: str) -> None:
        tokens.append(piece)
        original(piece)
        if len(tokens) == 1:
            qtbot.keyClick(window, Qt.Key.Key_Escape)

    engine = window.host.engine
    real_load = engine.parts.load_model

    def slow_load():  # a model that takes its time to load: Esc comes after the evidence, before any sentence
        window.host._stop_answer.wait(20)
        return real_load()

    monkeypatch.setattr(engine.parts, "load_model", slow_load)
    monkeypatch.setattr(conv, "append_token", token_then_escape)
    conv.ask.emit(QUESTION)
    qtbot.waitUntil(lambda: not conv.busy, timeout=WAIT_MS)
    stopped = conv.entries[-1]
    assert "Stopped." in stopped.note
    assert tokens[0].startswith("What the sources say:")
    assert _flat(stopped.text) == _flat("".join(tokens))  # what was shown before Esc is kept

    monkeypatch.setattr(engine.parts, "load_model", real_load)
    complete: list[str] = []
    monkeypatch.setattr(conv, "append_token", lambda piece: (complete.append(piece), original(piece)))
    conv.new_chat.emit()
    conv.ask.emit(QUESTION)
    qtbot.waitUntil(lambda: not conv.busy, timeout=WAIT_MS)
    assert "Stopped." not in conv.entries[-1].note
    assert window.host.engine is not None and window.host.engine.model_state.startswith("ready")

    conv.ask.emit(QUESTION)  # Esc before the first token: nothing is generated
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not conv.busy, timeout=WAIT_MS)
    assert "Stopped." in conv.entries[-1].note
