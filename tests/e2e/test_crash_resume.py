"""kill -9 at 50 random moments during `sealroom index`, and 50 during `sealroom ask`:
nothing lost, nothing duplicated, and the result equals a run that was never interrupted."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sealroom.core.engine import Engine
from tests.conftest import CORPUS, PDFS, cli

pytestmark = pytest.mark.slow

KILLS = 50


def snapshot(home: Path) -> tuple[dict[str, tuple[str, str | None]], int, set[str]]:
    with Engine(home=home) as engine:
        files = {f.path: (f.status, f.reason) for f in engine.catalog.files()}
        chunk_ids = {c.id for b in engine.catalog.all_chunks() for c in b}
        assert engine.parts.store.ids() == chunk_ids, "Chroma holds exactly the catalog's chunks"
        return files, engine.catalog.chunk_count(), chunk_ids


def start(home: Path, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "none.toml"))
    return subprocess.Popen(
        [sys.executable, "-m", "sealroom.core.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_after(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """SIGKILL the command and its subprocesses after `seconds`; True when it had finished already."""
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the parser and model processes die with it
        proc.wait()
        return False


def catalog_is_sound(home: Path) -> sqlite3.Connection:
    db = sqlite3.connect(home / "catalog.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    return db


@pytest.mark.timeout(3600)  # the real budget is measured below, from a clean run on this machine
def test_kill_nine_fifty_times_while_indexing_then_resume_equals_clean_run(tmp_path: Path):
    folders = [str(PDFS), str(CORPUS / "docx-samples")]
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    for home in (clean, crashed):
        cli(home, "add", *folders)
    started = time.monotonic()
    cli(clean, "index")
    clean_seconds = time.monotonic() - started
    rng = random.Random(20261127)
    finished = 0
    for _ in range(KILLS):
        # moments from start-up (imports, opening the stores) to deep into a run; each run resumes
        finished += kill_after(start(crashed, "index"), rng.uniform(0.3, min(8.0, clean_seconds)))
    catalog_is_sound(crashed)
    # every restart redoes at most a few files (a large one resumes from its stored passages)
    budget = 3 * clean_seconds + 60
    resumed = time.monotonic()
    cli(crashed, "index", timeout=budget)
    print(
        f"clean {clean_seconds:.0f} s; {KILLS} kills ({finished} runs had ended); "
        f"the last run took {time.monotonic() - resumed:.0f} s"
    )
    clean_files, clean_chunks, clean_ids = snapshot(clean)
    crashed_files, crashed_chunks, crashed_ids = snapshot(crashed)
    assert crashed_files == clean_files
    assert crashed_chunks == clean_chunks
    assert crashed_ids == clean_ids  # no duplicate or orphan chunks


@pytest.mark.timeout(3600)
def test_kill_nine_fifty_times_while_answering_leaves_no_half_chat_and_loses_nothing(tmp_path: Path):
    home = tmp_path / "home"
    cli(home, "add", str(CORPUS / "email-samples"))
    cli(home, "index")
    before = snapshot(home)
    started = time.monotonic()
    first = json.loads(
        cli(home, "ask", "Why could the message to jangel1 not be delivered?", "--json").stdout
    )
    ask_seconds = time.monotonic() - started
    assert first["called_model"], "the kills below land in a real answer: evidence, then the model"
    questions = [
        "Who sent the message with the subject 'yeah for Ians!!'?",
        "What is the name of the file attached to the dingus fish email?",
        "When was it sent?",
    ]
    rng = random.Random(1127)
    completed = 1
    for i in range(KILLS):
        args = ["ask", rng.choice(questions)]
        if i % 3 == 0:  # some follow-ups: the answer is added to an existing chat
            args += ["--chat", str(first["chat_id"])]
        completed += kill_after(start(home, *args), rng.uniform(0.2, ask_seconds * 1.1))
    db = catalog_is_sound(home)
    rows = db.execute("SELECT chat_id, role FROM messages ORDER BY chat_id, id").fetchall()
    chats = {c for (c,) in db.execute("SELECT id FROM chats")}
    by_chat: dict[int, list[str]] = {}
    for chat_id, role in rows:
        by_chat.setdefault(chat_id, []).append(role)
    assert set(by_chat) == chats, "no chat without messages, no message without a chat"
    for roles in by_chat.values():
        assert roles == ["user", "assistant"] * (len(roles) // 2), "every question has exactly its answer"
    answers = sum(len(r) // 2 for r in by_chat.values())
    assert completed <= answers <= 1 + KILLS, "each ask adds one answer at most, and finished ones are kept"
    assert by_chat[first["chat_id"]][:2] == ["user", "assistant"]
    db.close()
    assert snapshot(home) == before, "answering never touches the index"
    again = json.loads(
        cli(home, "ask", "Why could the message to jangel1 not be delivered?", "--json").stdout
    )
    assert again["evidence"] and again["chat_id"] not in (None, first["chat_id"])
    print(f"{KILLS} kills while answering (ask takes {ask_seconds:.1f} s); {completed} asks had finished")
