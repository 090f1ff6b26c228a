"""The command line while the window owns the data folder (issue 28, item 6): the real `sealroom` runs its
commands in the window (core/runtime/control.py) with the output and exit codes it has on its own; a folder
it adds shows in the window; a command that needs the data folder alone is refused in one clear line; a
second `sealroom-desktop` is still refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sealroom.core.runtime import control
from sealroom.desktop.window import MainWindow
from tests.conftest import CORPUS, PDFS
from tests.desktop.conftest import WAIT_MS

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
QUERY = "rotational life of the wirewound potentiometer"


def sealroom(
    home: Path, *args: str, qtbot: Any = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed `sealroom` command, with the window's data folder; the GUI loop runs meanwhile."""
    env = dict(os.environ, SEALROOM_HOME=str(home))
    proc = subprocess.Popen(
        [str(BIN / "sealroom"), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if qtbot is not None:
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=WAIT_MS)
    out, err = proc.communicate(timeout=WAIT_MS / 1000)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def status_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    keep = (
        "version",
        "data_dir",
        "folders",
        "files",
        "counts",
        "chunks",
        "semantic_pending",
        "embedding_model",
    )
    return {k: status[k] for k in keep}  # not the alerts and warnings: "not watching" is true once it closed


def hits_of(run: subprocess.CompletedProcess[str]) -> list[tuple[Any, ...]]:
    assert run.returncode == 0, run.stderr
    hits = json.loads(run.stdout)["hits"]
    return [(h["chunk_id"], h["path"], h["page"], h["text"], h["start"], h["end"]) for h in hits]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("unreadablemetadata.pdf", "pdflatex-4-pages.pdf"):
        shutil.copy(next(PDFS.rglob(name)), folder / name)
    shutil.copy(CORPUS / "docx-samples" / "par-known-paragraphs.docx", folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    return folder


def test_commands_run_in_the_window_as_they_run_alone(
    window: MainWindow, corpus: Path, home: Path, tmp_path: Path, qtbot
):
    host = window.host
    window.add_folder(str(corpus))

    def settled() -> bool:
        status = host.require_engine().status()
        return status["counts"] == {"indexed": 3, "failed": 1} and not status["semantic_pending"]["files"]

    qtbot.waitUntil(settled, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: control.socket_path(home).exists(), timeout=10_000)

    status = sealroom(home, "status", "--json", qtbot=qtbot)
    search = sealroom(home, "search", QUERY, "--json", qtbot=qtbot)
    assert status.stderr == "" and search.stderr == ""
    hits = hits_of(search)
    assert hits and hits[0][1].endswith("unreadablemetadata.pdf")
    assert {f["status"] for f in json.loads(status.stdout)["files"]} == {"indexed", "failed"}

    # a question asked from the command line is answered in the window and joins its chats
    asked = sealroom(home, "ask", f"What is the {QUERY}?", "--json", qtbot=qtbot)
    assert asked.returncode == 0 and asked.stderr == "", asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["citations"] and answer["citations"][0]["path"].endswith("unreadablemetadata.pdf")
    chats = window.sidebar.chats
    qtbot.waitUntil(lambda: chats.count() == 1, timeout=10_000)
    assert "⌨ command line" in chats.item(0).text()  # marked as asked from the command line

    # a folder added from the command line (a relative path, from where it was typed) shows in the window
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "note.txt").write_text("The boiler service is every April, by Acme Heating.")
    added = sealroom(home, "add", "more", qtbot=qtbot, cwd=tmp_path)
    assert (added.returncode, added.stdout, added.stderr) == (0, f"watching {tmp_path / 'more'}\n", "")
    folders = window.sidebar.folders
    qtbot.waitUntil(lambda: folders.count() == 2, timeout=10_000)
    assert sorted(folders.item(i).toolTip() for i in range(2)) == [str(corpus), str(tmp_path / "more")]
    qtbot.waitUntil(
        lambda: "1 indexed" in window.sidebar.folders.item(1).text(), timeout=WAIT_MS
    )  # rescanned
    found = sealroom(home, "search", "boiler service", qtbot=qtbot)
    assert found.returncode == 0 and "note.txt" in found.stdout and "Acme Heating" in found.stdout

    # what needs the data folder alone is refused in one line; usage errors exit 2 as they do alone
    index = sealroom(home, "index", qtbot=qtbot)
    assert index.returncode == 1 and index.stdout == "" and index.stderr.count("\n") == 1
    assert (
        "(sealroom-desktop)" in index.stderr
        and "`sealroom index` needs the data directory to itself" in index.stderr
    )
    usage = sealroom(home, "feedback", "1", qtbot=qtbot)  # found wanting by the command, in the window
    assert usage.returncode == 2 and usage.stderr.startswith("sealroom: say which answer and how")
    assert sealroom(home, "search", qtbot=qtbot).returncode == 2  # found wanting by the parser

    removed = sealroom(home, "remove", str(tmp_path / "more"), qtbot=qtbot)
    assert removed.returncode == 0 and removed.stderr == ""
    qtbot.waitUntil(lambda: folders.count() == 1, timeout=10_000)
    gone = sealroom(home, "remove", "more", qtbot=qtbot, cwd=tmp_path)
    assert (gone.returncode, gone.stderr) == (2, f"sealroom: not a watched folder: {tmp_path / 'more'}\n")

    # the window closed, the same commands on their own: the same answers, the same errors
    host.shutdown()
    assert not control.socket_path(home).exists()
    assert status_of(sealroom(home, "status", "--json")) == status_of(status)
    alone = sealroom(home, "search", QUERY, "--json")
    assert alone.stderr == "" and hits_of(alone) == hits
    again = sealroom(home, "remove", "more", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (gone.returncode, gone.stderr)
    usage_alone = sealroom(home, "feedback", "1")
    assert (usage_alone.returncode, usage_alone.stderr) == (usage.returncode, usage.stderr)


def test_the_app_serves_the_command_line_and_stays_one_instance(home: Path):
    env = dict(os.environ, SEALROOM_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    first = subprocess.Popen(
        [str(BIN / "sealroom-desktop"), "--quit-after", "240"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not control.socket_path(home).exists():
            assert first.poll() is None, "the app ended early"
            assert time.monotonic() < deadline, "the app never served the command line"
            time.sleep(0.2)
        folders = sealroom(home, "folders")
        assert (folders.returncode, folders.stdout, folders.stderr) == (0, "", "")
        status = sealroom(home, "status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["data_dir"] == str(home.resolve())
        refused = sealroom(home, "repair")
        assert refused.returncode == 1 and f"process {first.pid} (sealroom-desktop)" in refused.stderr
        second = subprocess.run(
            [str(BIN / "sealroom-desktop")], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 0 and "already running" in second.stderr
        assert sealroom(home, "folders").returncode == 0  # the first still serves
    finally:
        first.terminate()
        first.wait(30)
