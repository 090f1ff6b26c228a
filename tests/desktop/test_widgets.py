"""Widget behaviour that needs no engine: keys, drag and drop, rendering of citations."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from sealroom.desktop.conversation import Conversation, Entry, QuestionEdit
from sealroom.desktop.sidebar import Sidebar, folder_counts_text


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
