"""The app around the conversation: start-up, single instance, chats, workspaces, settings, diagnostics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from sealroom.desktop.dialogs import DiagnosticsDialog, SettingsDialog
from sealroom.desktop.window import MainWindow
from tests.desktop.conftest import WAIT_MS
from tests.fakes import TEAM_HIT, FakeTeamService


def _desktop(home: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "no-policy.toml"), **env)
    return subprocess.Popen(
        [sys.executable, "-m", "sealroom.desktop.app", *args],
        env={k: v for k, v in environ.items() if v},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_without_a_display_it_says_so_in_one_line(home: Path):
    proc = _desktop(home, DISPLAY="", WAYLAND_DISPLAY="", QT_QPA_PLATFORM="")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().count("\n") == 0 and "no display" in err and "sealroom --help" in err


@pytest.mark.slow
def test_second_launch_brings_the_running_window_forward(home: Path):
    first = _desktop(home, "--quit-after", "120", QT_QPA_PLATFORM="offscreen")
    try:
        assert first.stderr is not None
        line = ""
        while "window visible after" not in line:
            line = first.stderr.readline()
            assert line or first.poll() is None, "the first instance ended early"
        print(f"\n{line.strip()}")
        log = home / "logs" / "sealroom.jsonl"
        deadline = time.monotonic() + 60
        while not (log.exists() and "desktop started" in log.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        second = _desktop(home, QT_QPA_PLATFORM="offscreen")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0 and "already running" in err
        while "window brought forward" not in log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        messages = [json.loads(x)["msg"] for x in log.read_text().splitlines()]
        assert messages.count("desktop started") == 1  # one engine, one owner of the data folder
    finally:
        first.terminate()
        first.wait(30)


def test_chats_are_listed_opened_renamed_and_deleted(window: MainWindow, qtbot, monkeypatch):
    catalog = window.host.engine.catalog
    cites = [{"n": 1, "path": "/d/lease.pdf", "page": 2, "text": "Rent is due monthly."}]
    chat = catalog.record_answer(None, "Rent question", "Monthly [1].", cites, {})
    window.refresh()
    chats = window.sidebar.chats
    qtbot.waitUntil(lambda: chats.count() == 1, timeout=10_000)
    item = chats.item(0)
    qtbot.mouseClick(chats.viewport(), Qt.MouseButton.LeftButton, pos=chats.visualItemRect(item).center())
    qtbot.waitUntil(lambda: window.chat_id == chat, timeout=10_000)
    assert window.conversation.title.text() == "Rent question"
    assert "Monthly" in window.conversation.transcript.toPlainText()
    assert [b.text() for b in window.conversation.chip_buttons] == ["[1] lease.pdf, p. 2"]

    asked_with: list[tuple[str, ...]] = []
    monkeypatch.setattr(window, "ask_text", lambda *a, **k: asked_with.append(a) or "Lease: rent")
    window.rename_chat(chat)
    assert asked_with[0][2] == "Rent question"  # the dialog starts from the title it renames

    def title(i: int) -> str:
        return chats.item(i).data(Qt.ItemDataRole.UserRole + 1)

    qtbot.waitUntil(lambda: chats.count() == 1 and title(0) == "Lease: rent", timeout=10_000)
    assert chats.item(0).text().splitlines()[1].startswith("Today ")  # when it was last used

    # a chat asked with `sealroom ask` is marked; the newest used is first; the search box filters
    catalog.record_answer(None, "Deposit question", "Two months [1].", cites, {}, origin="cli")
    window.refresh()
    qtbot.waitUntil(lambda: chats.count() == 2, timeout=10_000)
    assert [title(0), title(1)] == ["Deposit question", "Lease: rent"]
    assert "⌨ command line" in chats.item(0).text() and "command line" not in chats.item(1).text()
    qtbot.keyClicks(window.sidebar.chat_search, "lease")
    assert chats.count() == 1 and title(0) == "Lease: rent"
    window.sidebar.chat_search.clear()
    assert chats.count() == 2

    monkeypatch.setattr(window, "confirm", lambda *a: True)
    window.delete_chat(chat)
    qtbot.waitUntil(lambda: chats.count() == 1, timeout=10_000)
    assert [t for _, t in catalog.chats()] == ["Deposit question"] and window.chat_id is None


def test_workspaces_keep_their_own_folders(window: MainWindow, qtbot, monkeypatch, tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "note.txt").write_text("The boiler service is every April.")
    (tmp_path / "b").mkdir()
    side = window.sidebar
    window.add_folder(str(tmp_path / "a"))
    qtbot.waitUntil(lambda: side.folders.count() == 1, timeout=WAIT_MS)
    monkeypatch.setattr(window, "ask_text", lambda *a, **k: "Case 12")
    window.create_workspace()
    qtbot.waitUntil(
        lambda: side.workspace.currentText() == "Case 12" and side.folders.count() == 0, timeout=10_000
    )
    window.add_folder(str(tmp_path / "b"))
    qtbot.waitUntil(
        lambda: side.folders.count() == 1 and side.folders.item(0).toolTip().endswith("/b"), timeout=WAIT_MS
    )
    window.switch_workspace("default")
    qtbot.waitUntil(
        lambda: side.folders.count() == 1 and side.folders.item(0).toolTip().endswith("/a"), timeout=10_000
    )

    monkeypatch.setattr(window, "confirm", lambda *a: True)
    window.switch_workspace("Case 12")
    window.delete_workspace()
    qtbot.waitUntil(
        lambda: side.workspace.currentText() == "default" and side.workspace.count() == 1, timeout=10_000
    )
    assert window.host.engine.folders() == [str(tmp_path / "a")]
    side.folders.item(0).setSelected(True)
    qtbot.mouseClick(side.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: side.folders.count() == 0, timeout=10_000)
    assert window.host.engine.folders() == []


def _search_a_note(window: MainWindow, qtbot, tmp_path: Path):
    """A folder with one note, indexed; a search only for it, its passage found."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "note.txt").write_text("The boiler service is every April, by Acme Heating.")
    window.add_folder(str(tmp_path / "d"))
    qtbot.waitUntil(lambda: window.sidebar.folders.count() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "1 indexed" in window.sidebar.folders.item(0).text(), timeout=WAIT_MS)
    conv = window.conversation
    conv.search_only.setChecked(True)
    qtbot.keyClicks(conv.question, "boiler service")
    qtbot.keyClick(conv.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(conv.entries) and conv.entries[-1].role == "search", timeout=WAIT_MS)
    assert conv.entries[-1].citations[0]["path"].endswith("note.txt")
    return conv


@pytest.fixture
def team_gone(tmp_path: Path) -> str:
    """A policy naming a team server on a loopback port nothing listens on (written before the window)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{s.getsockname()[1]}"
    (tmp_path / "no-policy.toml").write_text(f'team_server = "{url}"\n')
    return url


def test_a_search_says_when_the_team_index_is_out_of_reach(
    team_gone: str, window: MainWindow, qtbot, tmp_path: Path
):
    """Team mode with its server gone: the passages come from this computer's folders, and the search says
    so in the transcript and beside the question (the ask says it in its notes: tests/team/test_service.py)."""
    conv = _search_a_note(window, qtbot, tmp_path)
    said = "Team index unreachable — answering from this computer's folders."
    assert said in conv.transcript.toPlainText()
    assert conv.state.text() == "1 passage — team index unreachable — answering from this computer's folders"


@pytest.fixture
def team_up(tmp_path: Path) -> Iterator[FakeTeamService]:
    """A policy naming a team service (a stand-in on loopback), written before the window starts."""
    service = FakeTeamService()
    (tmp_path / "no-policy.toml").write_text(f'team_server = "{service.url}"\n')
    yield service
    service.stop()


def test_a_team_passage_is_labelled_and_previewed_with_its_section(
    team_up: FakeTeamService, window: MainWindow, qtbot
):
    """A team index's passage is listed as the team's, and opening it shows its section, read from the
    service (behind the user's wall); the service gone, the preview says why and shows the quote."""
    conv = window.conversation
    conv.search_only.setChecked(True)
    qtbot.keyClicks(conv.question, "when does the lease end")
    qtbot.keyClick(conv.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(conv.entries) and conv.entries[-1].role == "search", timeout=WAIT_MS)
    [cited] = conv.entries[-1].citations
    assert cited["origin"] == "team" and "[1] team: lease.pdf, p. 3" in conv.transcript.toPlainText()
    assert [b.text() for b in conv.chip_buttons] == ["[1] team: lease.pdf, p. 3"]
    window.show_source(cited)
    qtbot.waitUntil(lambda: "ARTICLE 7" in window.preview.text.toPlainText(), timeout=WAIT_MS)
    assert window.preview.highlighted == TEAM_HIT["text"]
    assert "Notice of renewal" in window.preview.text.toPlainText()
    assert window.preview.heading.text() == "team index: lease.pdf — page 3"

    team_up.reply = 400, {"error": "source deleted or changed: this passage is no longer in the index"}
    window.show_source(cited)
    qtbot.waitUntil(lambda: "The quoted text only" in window.preview.text.toPlainText(), timeout=WAIT_MS)
    assert (
        window.preview.highlighted == TEAM_HIT["text"]
        and "ARTICLE 7" not in window.preview.text.toPlainText()
    )


def test_search_only_lists_passages_without_the_model(window: MainWindow, qtbot, tmp_path: Path):
    conv = _search_a_note(window, qtbot, tmp_path)
    shown = conv.transcript.toPlainText()
    assert "Acme Heating" in shown and "100%" in shown  # whole sentences, with the best match's bar
    assert "<b" in conv.transcript.toHtml() and window.chat_id is None  # terms marked; not a chat message
    assert conv.filters.isVisible() and conv.ask_button.text() == "Search"

    def search(query: str, **choose: int) -> list[dict]:
        for combo, index in (
            (conv.type_filter, choose.get("type", 0)),
            (conv.date_filter, choose.get("date", 0)),
        ):
            combo.setCurrentIndex(index)
        count = len(conv.entries)
        qtbot.keyClicks(conv.question, query)
        qtbot.keyClick(conv.question, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: len(conv.entries) == count + 1, timeout=WAIT_MS)
        return conv.entries[-1].citations

    assert search("boiler service", type=1) == []  # PDF only: the note is text
    assert conv.entries[-1].filters == "PDF" and "No passage matches" in conv.transcript.toPlainText()
    assert search("boiler service", type=3)[0]["path"].endswith("note.txt")  # Text
    assert search("boiler service", date=1)[0]["path"].endswith("note.txt")  # past week: written just now
    os.utime(tmp_path / "d" / "note.txt", (1e9, 1e9))  # 2001
    engine = window.host.engine
    engine.rescan()

    def mtime() -> int:
        return engine.catalog.query("SELECT mtime_ns FROM files WHERE path LIKE '%note.txt'")[0][0]

    qtbot.waitUntil(lambda: mtime() == 10**18, timeout=WAIT_MS)
    assert search("boiler service", date=3) == []  # past year
    assert search("boiler service", date=0)[0]["path"].endswith("note.txt")  # any time


@pytest.fixture
def policy_locks_log_level(home: Path, tmp_path: Path) -> None:
    (tmp_path / "no-policy.toml").write_text('log_level = "WARNING"\n')


def test_settings_show_the_default_model_and_save_changes(
    policy_locks_log_level, window: MainWindow, qtbot, home: Path
):
    dialog = SettingsDialog(window, window.host)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=WAIT_MS)
    row = dialog.table.selectionModel().selectedRows()[0].row()
    assert "(default" in dialog.table.item(row, 0).text()
    assert dialog.table.item(row, 1).text().endswith("MB") and dialog.table.item(row, 2).text() == "32768"
    assert dialog.table.horizontalHeaderItem(2).text() == "Trained context"  # what the model allows …
    assert dialog.ctx.text() in ("2,048 tokens", "2048 tokens")  # … and what Sealroom uses of it
    assert len(dialog.table.item(row, 3).toolTip()) == 64  # the full sha256
    assert not dialog.log_level.isEnabled()  # set by the policy
    dialog.ctx.setValue(3072)
    assert dialog.changes() == {"n_ctx": 3072}
    dialog._save()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    assert window.host.engine.settings.n_ctx == 3072
    assert "n_ctx = 3072" in (home / "settings.toml").read_text()


def test_diagnostics_show_engine_watcher_and_logs(window: MainWindow, qtbot, tmp_path: Path):
    (tmp_path / "d").mkdir()
    window.add_folder(str(tmp_path / "d"))
    qtbot.waitUntil(lambda: window.host.engine.watch_state.folders == [str(tmp_path / "d")], timeout=WAIT_MS)
    dialog = DiagnosticsDialog(window, window.host)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "Folder watcher" in dialog.report.toPlainText(), timeout=10_000)
    text = dialog.report.toPlainText()
    assert "running" in text and str(tmp_path / "d") in text
    assert str(window.host.engine.log_path) in text


@pytest.mark.slow
def test_pause_holds_indexing_and_retry_tries_failed_files_again(window: MainWindow, docs: Path, qtbot):
    panel = window.sidebar.indexing
    window.refresh()
    qtbot.wait(500)
    assert not panel.pause_button.isEnabled()  # idle, nothing waiting: nothing to pause
    panel.pause_button.setChecked(True)  # paused before the folder comes, so nothing starts
    assert panel.pause_button.text() == "Resume" and panel.pause_button.isEnabled()
    window.add_folder(str(docs))
    qtbot.waitUntil(lambda: window.sidebar.folders.count() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "pending" in window.sidebar.folders.item(0).text(), timeout=WAIT_MS)
    qtbot.wait(1500)
    assert window.host.engine.catalog.count_by_status().get("indexed", 0) <= 1  # at most the file under way
    assert panel.status.text() == "Paused"

    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: "4 indexed · 3 not indexed" in window.sidebar.folders.item(0).text(), timeout=WAIT_MS
    )
    log = window.host.engine.log_path

    def broken_attempts() -> int:
        return sum(
            '"file not indexed"' in line and "broken.pdf" in line for line in log.read_text().splitlines()
        )

    before = broken_attempts()
    assert panel.retry_button.isVisible()
    qtbot.mouseClick(panel.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: broken_attempts() == before + 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: panel.failed.count() == 3, timeout=WAIT_MS)


def test_a_data_folder_held_by_the_cli_is_explained_not_fatal(home: Path, qtbot):
    from sealroom.desktop import ops
    from sealroom.desktop.host import EngineHost

    holder = subprocess.Popen(
        [sys.executable, "-m", "sealroom.core.cli", "watch", "--json"],
        env=dict(os.environ, SEALROOM_HOME=str(home)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        while '"ready"' not in holder.stdout.readline():
            assert holder.poll() is None
        ops.install()
        host = EngineHost(home)
        window = MainWindow(host)
        qtbot.addWidget(window)
        window.show()
        with qtbot.waitSignal(host.start_failed, timeout=30_000) as failed:
            host.start()
        assert str(holder.pid) in failed.args[0]
        assert window.statusBar().currentMessage().startswith("Sealroom cannot open its index")
        assert not window.conversation.isEnabled()  # nothing to ask until the other process is gone
        ops.shutdown()
    finally:
        holder.terminate()
        holder.wait(30)
