"""Widget behaviour that needs no engine: keys, drag and drop, rendering of citations."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QPlainTextEdit,
    QProgressBar,
    QTextBrowser,
    QWidget,
)

from sealroom.desktop.conversation import Conversation, Entry, QuestionEdit
from sealroom.desktop.host import EngineHost
from sealroom.desktop.preview import _soft_highlight
from sealroom.desktop.sidebar import Sidebar, folder_counts_text
from sealroom.desktop.window import MainWindow


def test_enter_asks_and_shift_enter_starts_a_new_line(qtbot):
    edit = QuestionEdit()
    qtbot.addWidget(edit)
    qtbot.keyClicks(edit, "first line")
    with qtbot.assertNotEmitted(edit.submitted):
        qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(edit, "second")
    assert edit.toPlainText() == "first line\nsecond"
    with qtbot.waitSignal(edit.submitted, timeout=1000):
        qtbot.keyClick(edit, Qt.Key.Key_Return)


def test_a_dropped_folder_is_offered_and_a_dropped_file_is_not(qtbot, tmp_path: Path):
    side = Sidebar()
    qtbot.addWidget(side)
    (tmp_path / "a.txt").write_text("x")
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(tmp_path / "a.txt")), QUrl.fromLocalFile(str(tmp_path))])
    event = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        data,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(side.folder_dropped, timeout=1000) as dropped:
        side.dropEvent(event)
    assert dropped.args == [str(tmp_path)]


def test_only_given_citations_become_links_and_chips(qtbot):
    conv = Conversation()
    qtbot.addWidget(conv)
    cite = {"n": 2, "path": "/docs/lease.pdf", "page": 4, "text": "Rent is due monthly."}
    conv.show_chat(
        "Rent", [Entry("user", "When is rent due?"), Entry("assistant", "Monthly [2]. Or [7].", [cite])]
    )
    html = conv.transcript.toHtml()
    assert 'href="cite:1:2"' in html and "cite:1:7" not in html
    assert [b.text() for b in conv.chip_buttons] == ["[2] lease.pdf, p. 4"]
    with qtbot.waitSignal(conv.source_clicked, timeout=1000) as clicked:
        qtbot.mouseClick(conv.chip_buttons[0], Qt.MouseButton.LeftButton)
    assert clicked.args == [cite]


def test_folder_counts_read_as_a_user_expects():
    assert folder_counts_text({"indexed": 4, "failed": 1, "skipped": 2}) == "4 indexed · 3 not indexed"
    assert folder_counts_text({"pending": 5}) == "0 indexed · 5 pending"


def test_every_control_of_the_window_has_an_accessible_name(qtbot):
    window = MainWindow(EngineHost())
    qtbot.addWidget(window)
    kinds = (QAbstractButton, QAbstractItemView, QComboBox, QPlainTextEdit, QTextBrowser, QProgressBar)
    unnamed = [
        f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}"
        for w in window.findChildren(QWidget)
        if isinstance(w, kinds)
        and not w.accessibleName()
        and not w.objectName().startswith("qt_")  # Qt's own parts, such as the menu bar's overflow button
        and not isinstance(w.parent().parent(), QComboBox)  # a combo box's popup list
        and not (
            isinstance(w, QAbstractButton) and w.text().strip()
        )  # a labelled button is named by its text
    ]
    assert unnamed == []


def test_the_passage_highlight_follows_a_dark_palette():
    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Highlight, QColor("#3a6ea5"))
    colour = QColor(_soft_highlight(dark))
    assert colour.lightness() < 100  # dark text background stays dark, readable with light text
    light = QPalette()
    light.setColor(QPalette.ColorRole.Base, QColor("#ffffff"))
    light.setColor(QPalette.ColorRole.Highlight, QColor("#3a6ea5"))
    assert QColor(_soft_highlight(light)).lightness() > 150


def test_many_long_source_names_do_not_widen_the_window(qtbot):
    conv = Conversation()
    qtbot.addWidget(conv)
    narrow = conv.minimumSizeHint().width()
    long_name = "/docs/" + "a-very-long-contract-file-name-from-the-legal-share" * 2 + ".pdf"
    conv.set_chips([{"n": n, "path": long_name, "page": n} for n in range(1, 9)], "Passages:")
    assert conv.minimumSizeHint().width() <= max(narrow, 600)
    assert all(len(b.text()) <= 46 for b in conv.chip_buttons) and len(conv.chip_buttons) == 8


def test_dropped_sentences_are_behind_a_marked_toggle(qtbot):
    conv = Conversation()
    qtbot.addWidget(conv)
    dropped = [{"text": "They are kept for seven years.", "reason": "not in the evidence it cites: 7"}]
    conv.add(Entry("user", "How long are audit logs kept?"))
    conv.begin_answer()
    conv.finish_answer("What the sources say:\n“Audit logs are kept for ten years.” [1]", [], "", dropped)
    shown = conv.transcript.toPlainText()
    assert "Show 1 generated sentence not found in the sources" in shown and "seven" not in shown
    conv._anchor(QUrl("dropped:1"))
    revealed = conv.transcript.toPlainText()
    assert "Not found in the sources — not part of the answer: They are kept for seven years." in revealed
    conv._anchor(QUrl("dropped:1"))
    assert "seven" not in conv.transcript.toPlainText()


def test_only_the_quoted_span_is_highlighted(qtbot):
    from sealroom.core.protocols import Passage
    from sealroom.desktop.preview import SourcePreview

    preview = SourcePreview()
    qtbot.addWidget(preview)
    passage = Passage(
        "Before it.\nMore before. ", "Rotational Life\n  standard : 10,000 cycles", "\nAfter it.", 1
    )
    preview.show_passage({"path": "/d/pot.pdf", "page": 1, "text": "x"}, passage)
    assert " ".join(preview.highlighted.split()) == "Rotational Life standard : 10,000 cycles"
    preview.clear()
    assert preview.highlighted == "" and preview.heading.text() == "Sources"


def test_index_problems_are_shown_above_the_not_indexed_list_and_cleared(qtbot):
    side = Sidebar()
    qtbot.addWidget(side)
    side.show()
    panel = side.indexing
    panel.set_warnings(["the vector index is missing: search is by keyword only; indexing restores it"])
    assert panel.warning.isVisible()
    assert panel.warning.text().startswith("⚠ The vector index is missing")
    panel.set_warnings([])
    assert not panel.warning.isVisible()


def test_the_note_says_why_the_model_was_not_asked():
    from sealroom.core.answer.pipeline import TOO_LONG
    from sealroom.desktop.conversation import answer_note

    record = {"finish_reason": "too_long", "verification": {"shown": []}, "abstained": False}
    assert answer_note(record) == TOO_LONG
    assert "quotes are the answer" in answer_note({"finish_reason": "stop", "verification": {"shown": []}})
    refused = {"finish_reason": "no_model", "model_problem": "x.gguf is not on the list", "verification": {}}
    assert (
        answer_note(refused)
        == "The chat model was not used: x.gguf is not on the list. The quotes are the answer."
    )
