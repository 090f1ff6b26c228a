"""Widget behaviour that needs no engine: keys, drag and drop, rendering of citations."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QLineEdit,
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
    kinds = (
        QAbstractButton,
        QAbstractItemView,
        QComboBox,
        QLineEdit,
        QPlainTextEdit,
        QTextBrowser,
        QProgressBar,
    )
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


# --- issue 28: layout, conveniences, search only, appearance ---------------------------------------------
def test_the_geometry_check_finds_cut_text_overlaps_and_widgets_outside(qtbot):
    from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout

    from tests.desktop.screens import layout_problems

    top = QWidget()
    qtbot.addWidget(top)
    layout = QVBoxLayout(top)
    fine = QPushButton("OK")
    layout.addWidget(fine)
    top.resize(300, 200)
    top.show()
    qtbot.waitExposed(top)
    assert layout_problems(top) == []
    cut = QPushButton("Export this chat with every source to the legal share")
    cut.setFixedWidth(60)
    layout.addWidget(cut)
    label = QLabel("A label far too long to be shown whole in so narrow a window")
    row = QHBoxLayout()
    row.addWidget(label)
    layout.addLayout(row)
    stray = QPushButton("Stray", top)
    stray.setGeometry(280, 180, 80, 30)  # half outside, and over the others
    stray.show()
    top.setFixedWidth(200)
    qtbot.wait(50)
    found = "\n".join(layout_problems(top))
    assert "button 'Export this chat" in found and "cut" in found
    assert "label 'A label far too long" in found
    assert "Stray reaches outside the window" in found or "QPushButton reaches outside" in found


def test_a_long_title_or_state_never_widens_the_conversation(qtbot):
    conv = Conversation()
    qtbot.addWidget(conv)
    narrow = conv.minimumSizeHint().width()
    conv.title.setText("What is the rotational life of the wirewound potentiometer, and " * 4)
    conv.state.setText("Answered in 8.3 s from 12 passages of 7 files " * 3)
    assert conv.minimumSizeHint().width() == narrow
    conv.resize(400, 500)
    conv.show()
    qtbot.waitExposed(conv)
    assert not conv.title.fully_shown()
    qtbot.waitUntil(
        lambda: conv.title.toolTip().startswith("What is the rotational"), timeout=2000
    )  # as drawn


def shown_conversation(qtbot, width: int = 700, height: int = 600) -> Conversation:
    """A conversation pane on screen at this size, laid out."""
    conv = Conversation()
    qtbot.addWidget(conv)
    conv.resize(width, height)
    conv.show()
    qtbot.waitExposed(conv)
    return conv


def test_switching_chats_clears_the_last_answers_time_and_keeps_the_sources_row(qtbot):
    conv = shown_conversation(qtbot)
    row = conv.chips_area.geometry()
    conv.set_busy(False, "Answered in 8.3 s")
    cite = {"n": 1, "path": "/docs/lease.pdf", "page": 2, "text": "Rent is due monthly."}
    conv.show_chat("Rent", [Entry("user", "Rent?"), Entry("assistant", "Monthly [1].", [cite])])
    qtbot.wait(20)
    assert conv.state.text() == ""
    assert conv.chips_area.geometry() == row  # the row under the transcript keeps its place and height
    assert conv.chips_area.geometry().bottom() < conv.question.geometry().top()
    conv.show_chat("New chat", [])
    qtbot.wait(20)
    assert conv.chips_area.geometry() == row and conv.question.geometry().top() > row.bottom()


ANSWER = (
    "What the sources say:\n“Rent is due on the first day of each month.” [1]\n\nRent is due monthly [1]."
)
CITE = {
    "n": 1,
    "path": "/docs/lease.pdf",
    "page": 2,
    "heading": "Rent",
    "text": "ned in clause 3. Rent is due on the first day of each month. Late payment costs 5 %.",
}


def test_each_answer_has_source_cards_copy_and_regenerate(qtbot):
    from PySide6.QtGui import QGuiApplication

    conv = Conversation()
    qtbot.addWidget(conv)
    answer = Entry("assistant", ANSWER, [CITE], note="Stopped.", answer_id=7, question="When is rent due?")
    conv.show_chat("Rent", [Entry("user", "When is rent due?"), answer])
    shown = conv.transcript.toPlainText()
    assert "[1] lease.pdf, p. 2" in shown  # the card: file and page …
    assert (
        "“… Rent is due on the first day of each month. Late payment costs 5 %.”" in shown
    )  # … whole sentences
    assert "Copy · Copy as Markdown · Regenerate · Export…" in shown

    with qtbot.waitSignal(conv.copied, timeout=1000):
        conv._anchor(QUrl("copy:1:text"))
    text = QGuiApplication.clipboard().text()
    assert text.startswith("Q: When is rent due?\n\nWhat the sources say:")
    assert "(Stopped.)" in text and "[1] lease.pdf, page 2 — Rent\n    “ned in clause 3. Rent is due" in text
    conv._anchor(QUrl("copy:1:md"))
    markdown = QGuiApplication.clipboard().text()
    assert markdown.startswith("**When is rent due?**") and "Rent is due monthly [1]." in markdown
    assert "1. `lease.pdf, page 2 — Rent`\n   > ned in clause 3." in markdown

    with qtbot.waitSignal(conv.regenerate, timeout=1000) as again:
        conv._anchor(QUrl("regenerate:1"))
    assert again.args == [1]
    conv.set_busy(True, "Answering…")
    with qtbot.assertNotEmitted(conv.regenerate):
        conv._anchor(QUrl("regenerate:1"))


def test_search_only_shows_scores_marked_terms_and_whole_sentences(qtbot):
    conv = Conversation()
    qtbot.addWidget(conv)
    hits = [
        {"n": 1, "path": "/d/lease.pdf", "page": 2, "score": 0.032, "text": CITE["text"]},
        {"n": 2, "path": "/d/notes.txt", "page": None, "score": 0.008, "text": "The rent review is yearly."},
    ]
    conv.add(Entry("search", "rent due", hits, filters="PDF · Past month"))
    shown = conv.transcript.toPlainText()
    assert "2 passages for “rent due” (PDF · Past month)" in shown
    assert "100%" in shown and "25%" in shown  # relevance to the best match
    assert "… Rent is due on the first day" in shown  # starts at a sentence, not "ned in clause 3"
    html = conv.transcript.toHtml()
    assert html.count("font-weight:700") >= 3  # "Rent", "due", "rent" marked
    conv.search_only.setChecked(True)
    conv.set_folders(["/d", "/e/contracts"])
    conv.folder_filter.setCurrentIndex(2)
    conv.type_filter.setCurrentIndex(1)
    conv.question.setPlainText("rent")
    with qtbot.waitSignal(conv.search, timeout=1000) as asked:
        conv.submit()
    query, filters = asked.args
    assert query == "rent" and filters["folder"] == "/e/contracts" and filters["types"] == ["pdf"]
    assert filters["days"] == 0 and filters["said"] == "contracts · PDF"


def test_whole_sentences_and_marked_terms():
    from sealroom.desktop.text import highlighted, whole_sentences

    assert whole_sentences("ing of the lease. The tenant pays rent. It is due monthly.", 200) == (
        "… The tenant pays rent. It is due monthly."
    )
    assert (
        whole_sentences("The tenant pays rent. It is due monthly. " * 5, 60)
        == "The tenant pays rent. It is due monthly."
    )
    assert whole_sentences("word " * 100, 40).endswith(" …")
    assert highlighted("Termination needs notice.", "termination notice", "#ff0").count("<b") == 2
    assert highlighted("<script> &amp", "script amp", "#ff0") == (
        "&lt;<b style='background-color:#ff0'>script</b>&gt; &amp;<b style='background-color:#ff0'>amp</b>"
    )


def test_chats_read_with_dates_and_the_command_line_mark():
    import time as _time

    from sealroom.desktop.sidebar import chat_lines, when_text

    now = _time.mktime((2026, 12, 7, 15, 0, 0, 0, 0, -1))
    assert when_text(now - 3600, now) == "Today 14:00"
    assert when_text(now - 86400, now).startswith("Yesterday")
    assert when_text(now - 3 * 86400, now) == "Fri 4 Dec"
    assert when_text(now - 40 * 86400, now) == "28 Oct"
    assert when_text(now - 400 * 86400, now) == "2 Nov 2025"
    chat = {"id": 1, "title": "Rent", "last": now - 60, "questions": 3, "origin": "cli"}
    assert chat_lines(chat, now) == ("Rent", "Today 14:59 · 3 questions · ⌨ command line")


def test_the_model_is_named_alike_in_settings_and_the_status_bar():
    from sealroom.desktop.dialogs import model_title

    running = model_title("/cache/gemma-3-270m-q4_k_m-compact.gguf", True)
    assert running == "gemma-3-270m-q4_k_m (default, compact copy)"
    assert model_title("gemma-3-270m-q4_k_m.gguf", True) == "gemma-3-270m-q4_k_m (default)"
    assert model_title("/m/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") == "qwen2.5-coder-0.5b-instruct-q4_k_m"


def test_text_size_and_theme_are_kept_and_applied(qtbot, tmp_path: Path, monkeypatch):
    from PySide6.QtWidgets import QApplication

    from sealroom.desktop.appearance import Appearance

    monkeypatch.delenv("SEALROOM_TEXT_SCALE", raising=False)
    app = QApplication.instance()
    size, palette, style = app.font().pointSizeF(), app.palette(), app.style().name()
    try:
        look = Appearance(tmp_path)
        look.apply()
        look.zoom(1)
        look.zoom(1)
        assert look.scale == 1.25 and abs(app.font().pointSizeF() - size * 1.25) < 0.01
        look.set_theme("dark")
        assert app.palette().color(QPalette.ColorRole.Base).lightness() < 40
        look.set_theme("contrast")
        assert app.palette().color(QPalette.ColorRole.Window).name() == "#000000"
        assert app.palette().color(QPalette.ColorRole.Text).name() == "#ffffff"
        again = Appearance(tmp_path)  # the next start
        assert (again.scale, again.theme) == (1.25, "contrast")
        look.zoom(0)
        assert Appearance(tmp_path).scale == 1.0
    finally:
        font = app.font()
        font.setPointSizeF(size)
        app.setFont(font)
        app.setStyle(style)
        app.setPalette(palette)


def test_closing_without_a_tray_asks_first_and_says_watching_stops(qtbot, monkeypatch):
    from PySide6.QtGui import QCloseEvent

    window = MainWindow(EngineHost())
    qtbot.addWidget(window)
    window.tray = None
    window.host.engine = object()  # an engine is open: closing would stop watching
    asked: list[bool] = []
    monkeypatch.setattr(window, "confirm_quit", lambda: asked.append(True) or False)
    event = QCloseEvent()
    monkeypatch.setattr(QCloseEvent, "spontaneous", lambda self: True)  # as the window manager's ✕ sends it
    window.closeEvent(event)
    assert asked == [True] and not event.isAccepted() and not window.quitting
    window.host.engine = None


def test_the_tray_menu_opens_on_a_right_click_and_follows_pause(qtbot, monkeypatch):
    from PySide6.QtWidgets import QSystemTrayIcon

    window = MainWindow(EngineHost())
    qtbot.addWidget(window)
    reason = QSystemTrayIcon.ActivationReason
    window.tray_activated(reason.Context)
    qtbot.waitUntil(window.tray_menu.isVisible, timeout=2000)
    assert [a.text() for a in window.tray_menu.actions()] == ["Show Sealroom", "Pause indexing", "Quit"]
    window.tray_menu.hide()
    shown: list[bool] = []
    monkeypatch.setattr(window, "bring_forward", lambda: shown.append(True))
    window.tray_activated(reason.Trigger)
    assert shown == [True] and not window.tray_menu.isVisible()
    paused: list[str] = []
    window.host.engine = SimpleNamespace(pause=lambda: paused.append("pause"), resume=lambda: None)
    window.sidebar.indexing.pause_button.setEnabled(True)
    window.sidebar.indexing.pause_button.setChecked(True)  # paused in the sidebar: the tray says so too
    assert window.tray_pause.isChecked() and paused == ["pause"]
    window.host.engine = None


def test_the_sources_row_grows_with_the_text_size(qtbot):
    from PySide6.QtWidgets import QApplication

    from tests.desktop.screens import layout_problems

    conv = shown_conversation(qtbot)
    conv.set_chips([{"n": 1, "path": "/d/lease.pdf", "page": 2}], "Cited:")
    app = QApplication.instance()
    font = app.font()
    before = conv.chips_area.height()
    try:
        larger = app.font()
        larger.setPointSizeF(font.pointSizeF() * 1.5)
        app.setFont(larger)
        qtbot.wait(50)
        assert conv.chips_area.height() > before
        assert layout_problems(conv) == []
    finally:
        app.setFont(font)


def test_tab_goes_from_the_question_to_its_buttons_then_the_conversation(qtbot):
    window = MainWindow(EngineHost())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    conv = window.conversation
    conv.setEnabled(True)
    assert conv.question.tabChangesFocus()
    conv.search_only.setChecked(True)  # the filters are in the order too
    order = [conv.question]
    for _ in range(6):
        order.append(order[-1].nextInFocusChain())
        while not (
            order[-1].isVisible()
            and order[-1].isEnabled()
            and order[-1].focusPolicy() & Qt.FocusPolicy.TabFocus
        ):
            order[-1] = order[-1].nextInFocusChain()
    names = [w.accessibleName() for w in order]
    assert names == [
        "Question",
        "Search",
        "Search only, without the model",
        "Search in folder",
        "Search in file type",
        "Search files modified",
        "Conversation",
    ]
