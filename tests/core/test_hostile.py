"""Hostile entries in a watched folder: each ends with a status and a reason; nothing leaks or escapes."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealroom.core.engine import Engine
from sealroom.core.runtime.errors import ModelError, SealroomError, UsageError
from tests.conftest import CORPUS, cli, cli_json

CANARY = "CANARY-7f3a9c-DOCUMENT-TEXT"


def index_folder(home: Path, folder: Path, files: dict[str, str | bytes]) -> Path:
    """A watched folder holding `files` (name: text or bytes), indexed."""
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    cli(home, "add", str(folder))
    cli(home, "index", timeout=300)
    return folder


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "control.txt").write_text("The quarterly zebrafish audit is due in March.")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "environ.txt").symlink_to("/proc/self/environ")
    (folder / "dangling.txt").symlink_to(folder / "nowhere.txt")
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    (folder / "inside-link.txt").symlink_to(folder / "control.txt")
    os.mkfifo(folder / "pipe.txt")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.txt"))
    sock.close()
    rng = random.Random(7)
    (folder / "random-bytes.txt").write_bytes(bytes(rng.randrange(256) for _ in range(20_000)))
    shutil.copy(shutil.which("ls") or "/bin/ls", folder / "ls.txt")
    broken = (CORPUS / "pdf-samples" / "001-trivial" / "minimal-document.pdf").read_bytes()[:600]
    (folder / "broken.pdf").write_bytes(broken + f"\n({CANARY}) Tj\n".encode() + b"\x00garbage")
    return folder


def test_links_special_files_and_binary_end_with_a_reason_and_nothing_escapes(home: Path, hostile: Path):
    cli(home, "add", str(hostile))
    cli(home, "index", timeout=300)
    files = {Path(f["path"]).name: f for f in cli_json(home, "status")["files"]}
    expected = {
        "passwd.txt": "outside the watched folder",
        "environ.txt": "outside the watched folder",
        "dangling.txt": "broken link",
        "loop.txt": "link loop",
        "pipe.txt": "FIFO",
        "sock.txt": "socket",
        "random-bytes.txt": "binary content",
        "ls.txt": "binary content",
    }
    for name, reason in expected.items():
        assert files[name]["status"] == "skipped" and reason in files[name]["reason"], files[name]
    assert files["control.txt"]["status"] == "indexed" and files["inside-link.txt"]["status"] == "indexed"
    assert files["broken.pdf"]["status"] in ("failed", "skipped") and files["broken.pdf"]["reason"]
    hits = cli_json(home, "search", "root daemon nologin bin bash HOME PATH SEALROOM_HOME")["hits"]
    assert not any(Path(h["path"]).name in ("passwd.txt", "environ.txt") for h in hits)
    assert "root:x:0:0" not in cli(home, "search", "root", "--json").stdout
    top = cli_json(home, "search", "zebrafish", "-k", "1")["hits"][0]
    assert Path(top["path"]).name in ("control.txt", "inside-link.txt")


def test_document_text_never_reaches_reasons_or_logs(home: Path, hostile: Path):
    cli(home, "add", str(hostile))
    cli(home, "index", timeout=300)
    assert CANARY not in cli(home, "status", "--json").stdout
    for log in (home / "logs").glob("*"):
        assert CANARY not in log.read_text(errors="replace"), log


@pytest.mark.parametrize(
    "args",
    [
        ("search", ""),
        ("search", "   "),
        ("search", "x", "-k", "0"),
        ("search", "x", "-k", "-1"),
        ("add", "/"),
        ("ask", "x" * 2001),
        ("ask", "what?", "--chat", "999"),
        ("add", "/no/such/folder"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(home: Path, args: tuple[str, ...]):
    proc = cli(home, *args, check=False)
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("sealroom: ") and proc.stderr.count("\n") == 1


def test_the_data_folder_itself_cannot_be_watched(home: Path, tmp_path: Path):
    cli(home, "folders")  # creates the data folder
    for folder in (home, tmp_path):  # the data folder, and a folder that holds it
        proc = cli(home, "add", str(folder), check=False)
        assert proc.returncode == 2 and "data folder" in proc.stderr


def test_data_files_are_private_and_an_open_data_folder_is_flagged(home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Private notes about the merger.")
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # made by someone else, readable by all
    cli(home, "add", str(docs))
    cli(home, "index")
    status = cli_json(home, "status")
    assert any("can be read by other users" in w and "chmod 700" in w for w in status["warnings"])
    for path in [home / "catalog.sqlite", *(home / "logs").iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path
    for folder in [home / "chroma", home / "logs"]:
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    home.chmod(0o700)
    assert cli_json(home, "status")["warnings"] == []


def test_file_names_that_are_not_utf8_or_odd_never_stop_indexing(home: Path, tmp_path: Path):
    docs = tmp_path / "odd names"
    docs.mkdir()
    names = [b"caf\xe9.txt", b"new\nline.txt", b"-leading-dash.txt", b"x" * 200 + b".txt", b"plain.txt"]
    for i, name in enumerate(names):
        with open(os.path.join(os.fsencode(docs), name), "w") as f:
            f.write(f"Odd name number {i} holds the word quokka{i}.")
    cli(home, "add", str(docs))
    out = cli(home, "index").stdout
    assert out.startswith("5 indexed, 0 failed"), out
    status = cli(home, "status", "--json").stdout
    assert "caf\\udce9.txt" in status  # shown escaped (a JSON escape: a parser gets the exact name back)
    for i in range(len(names)):
        hits = cli_json(home, "search", f"quokka{i}", "-k", "1")["hits"]
        assert hits and f"quokka{i}" in hits[0]["text"]
    os.remove(os.path.join(os.fsencode(docs), b"caf\xe9.txt"))
    cli(home, "index")
    assert len(cli_json(home, "status")["files"]) == 4  # and its removal is seen too


def test_the_same_bytes_under_two_types_are_two_versions(home: Path, tmp_path: Path):
    notes = "# Heading\nThe boiler is serviced in April."
    files = {"empty.pdf": b"", "empty.docx": b"", "notes.txt": notes, "notes.md": notes}
    docs = index_folder(home, tmp_path / "docs", files)
    files = {Path(f["path"]).name: f for f in cli_json(home, "status")["files"]}
    assert "docx" not in (files["empty.pdf"]["reason"] or "").lower(), files["empty.pdf"]
    assert "pdf" not in (files["empty.docx"]["reason"] or "").lower(), files["empty.docx"]
    assert files["notes.txt"]["status"] == files["notes.md"]["status"] == "indexed"
    (docs / "notes.md").rename(docs / "renamed.md")
    assert "this run: 0 files" in cli(home, "index").stdout  # a rename within a type is still free


def test_a_damaged_vector_index_says_so_in_one_line_and_repair_rebuilds_it(home: Path, tmp_path: Path):
    index_folder(home, tmp_path / "docs", {"a.txt": "The walrus contract renews every June."})
    (home / "chroma" / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    proc = cli(home, "search", "walrus", check=False)
    assert proc.returncode == 1 and "sealroom repair" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "rebuilt the vector index: 1 chunks" in cli(home, "repair").stdout
    assert any((home).glob("chroma.damaged-*"))  # moved aside, not deleted
    assert "walrus" in cli_json(home, "search", "walrus")["hits"][0]["text"]


def test_quitting_while_the_vector_index_opens_is_not_reported_as_a_damaged_index(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    # Closing the window during start-up: Chroma's imports fail once the interpreter shuts down, and the
    # log said "vector index unreadable" about an index that was fine.
    from sealroom.core import components as components_module
    from sealroom.core.runtime.logs import recent_problems

    def shutting_down(*args: object) -> None:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(components_module, "VectorStore", shutting_down)
    closing = Engine(home)
    closing.close()
    with pytest.raises(SealroomError, match="closing"):
        closing.parts.store  # noqa: B018
    assert [p["msg"] for p in recent_problems(closing.log_path)] == []
    with Engine(home) as running, pytest.raises(SealroomError, match="sealroom repair"):
        running.parts.store  # noqa: B018  # the same failure while running is still the index's
    assert [p["msg"] for p in recent_problems(closing.log_path)] == ["vector index unreadable"]


def test_a_model_that_fails_its_first_token_at_load_is_closed_and_not_kept(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    from types import SimpleNamespace

    from sealroom.core import components as components_module

    class Broken:  # loads, then cannot evaluate the prompts' shared start
        has_chat_template, n_ctx, finish_reason, closed = True, 2048, "stop", False

        def warm_up(self) -> None: ...

        def generate(self, **request: object) -> Iterator[str]:
            raise ModelError("generation failed: out of memory")
            yield ""

        def close(self) -> None:
            self.closed = True

    broken = Broken()
    entry = SimpleNamespace(path="broken.gguf", sha256="0" * 64)
    monkeypatch.setattr(components_module, "make_generator", lambda home, settings: (broken, entry))
    with Engine(home) as engine:
        with pytest.raises(ModelError, match="out of memory"):
            engine.llm()
        assert broken.closed and engine.model_state == "not loaded"


def test_deleting_a_document_deletes_its_text_from_the_data_folder(home: Path, tmp_path: Path):
    secret = "ZANZIBARCANARY"
    files = {
        "keep.txt": "The boiler is serviced every April.",
        "secret.txt": f"Patient {secret} was referred on 3 May. " * 40,
    }
    docs = index_folder(home, tmp_path / "docs", files)
    with Engine(home=home) as engine:
        hit = engine.search(secret.lower())[0]

    def holders() -> list[str]:
        # any case: the keyword index keeps its tokens lower-cased
        return [
            str(p)
            for p in home.rglob("*")
            if p.is_file() and secret.lower().encode() in p.read_bytes().lower()
        ]

    assert holders()  # the text is there while the file is
    (docs / "secret.txt").unlink()
    cli(home, "index")
    assert holders() == []
    assert cli_json(home, "search", "boiler")["hits"]
    with Engine(home=home) as engine, pytest.raises(UsageError, match="source deleted or changed"):
        engine.passage(hit.sha256, hit.seq, hit.start, hit.end)  # its citation, opened later


def test_a_huge_file_is_indexed_up_to_its_budget_and_says_so(home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    sentence = "Clause {i} of the framework agreement sets the fee for service level {i}. "
    (docs / "huge.txt").write_text("".join(sentence.format(i=i) for i in range(60_000)))  # ~4.5 MB
    (docs / "small.txt").write_text("The boiler is serviced every April.")
    home.mkdir(parents=True)
    (home / "settings.toml").write_text("max_chunks_per_file = 20\n")
    cli(home, "add", str(docs))
    cli(home, "index", timeout=300)
    status = cli_json(home, "status")
    files = {Path(f["path"]).name: f for f in status["files"]}
    assert files["huge.txt"]["status"] == "indexed"
    assert (
        "first 20 passages" in files["huge.txt"]["reason"]
        and "max_chunks_per_file" in files["huge.txt"]["reason"]
    )
    assert files["small.txt"]["status"] == "indexed" and files["small.txt"]["reason"] is None
    assert status["chunks"] == 21


def test_a_damaged_catalog_is_moved_aside_and_rebuilt_from_the_folders(home: Path, tmp_path: Path):
    docs = index_folder(home, tmp_path / "docs", {"a.txt": "The narwhal lease ends in 2031."})
    for suffix in ("-wal", "-shm"):
        Path(f"{home / 'catalog.sqlite'}{suffix}").unlink(missing_ok=True)
    (home / "catalog.sqlite").write_bytes(b"garbage, not a database " * 400)
    proc = cli(home, "status", "--json", check=False)
    assert proc.returncode == 0 and proc.stderr.count("\n") == 1 and "moved to" in proc.stderr
    status = cli_json(home, "status")
    assert status["folders"] == [str(docs)] and any("could not be read" in w for w in status["warnings"])
    damaged = list(home.glob("catalog.damaged-*.sqlite"))
    assert damaged and damaged[0].read_bytes().startswith(b"garbage")  # kept, never deleted
    cli(home, "index")
    assert "narwhal" in cli_json(home, "search", "narwhal")["hits"][0]["text"]


def as_plain_user() -> list[str]:
    """A command prefix under which folder permissions apply (root reads everything otherwise)."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", "--bounding-set", caps, "--inh-caps", caps]


def test_an_unreadable_sub_folder_is_listed_with_its_reason_and_its_files_are_kept(
    home: Path, tmp_path: Path
):
    docs = tmp_path / "docs"
    locked = docs / "locked"
    locked.mkdir(parents=True)
    (docs / "a.txt").write_text("The heron survey is filed each spring.")
    (locked / "b.txt").write_text("The otter permit number is 4471.")
    cli(home, "add", str(docs))
    cli(home, "index")
    env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "none.toml"))
    locked.chmod(0)
    try:
        proc = subprocess.run(
            [*as_plain_user(), sys.executable, "-m", "sealroom.core.cli", "index"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        files = {f["path"]: f for f in cli_json(home, "status")["files"]}
        assert files[str(locked)]["status"] == "skipped"
        assert "cannot read this folder (Permission denied)" in files[str(locked)]["reason"]
        assert files[str(locked / "b.txt")]["status"] == "indexed", "kept while its folder cannot be read"
    finally:
        locked.chmod(0o755)
    cli(home, "index")
    files = {f["path"]: f for f in cli_json(home, "status")["files"]}
    assert str(locked) not in files and files[str(locked / "b.txt")]["status"] == "indexed"
