"""Issue 24: a document taken out of the index leaves neither its vectors nor its content sha256 in Chroma's
file: not in the write-ahead log (chromadb 1.5.9 never trims it) and not in pages Chroma freed. (The delete
records themselves - chunk ids - stay until Chroma persists its vector index; see README.)"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from tests.conftest import cli, cli_json


def test_a_removed_folder_leaves_nothing_of_its_documents_in_chromas_file(tmp_path: Path):
    home, keep, gone = tmp_path / "home", tmp_path / "keep", tmp_path / "gone"
    keep.mkdir(), gone.mkdir()
    (keep / "kept.txt").write_text("The office opens at nine. Visitors sign in at the front desk.\n" * 20)
    secret = "The settlement with Brightwater Ltd is 1.2 million pounds, payable in three parts.\n" * 30
    (gone / "settlement.txt").write_text(secret)
    cli(home, "add", str(gone))
    cli(home, "index")
    database = home / "chroma" / "chroma.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as db:  # what Chroma keeps of the document
        shas = {v for (v,) in db.execute("SELECT string_value FROM embedding_metadata WHERE key = 'sha256'")}
        vectors = {bytes(v[:64]) for (v,) in db.execute("SELECT vector FROM embeddings_queue")}
    traces = [s.encode() for s in shas] + list(vectors)
    assert len(traces) > 1 and all(t in database.read_bytes() for t in traces)
    cli(home, "add", str(keep))
    cli(home, "index")
    cli(home, "remove", str(gone))
    left = [t for t in traces if t in database.read_bytes()]
    assert not left, (
        f"{len(left)} of {len(traces)} traces of the removed document are still in {database.name}"
    )
    hits = cli_json(home, "search", "Brightwater settlement")["hits"]
    assert hits and all("settlement.txt" not in h["path"] for h in hits)  # and the index still works
    assert any("kept.txt" in h["path"] for h in cli_json(home, "search", "office opens")["hits"])


def _logs(home: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (home / "logs").glob("sealroom.jsonl*"))


def test_a_deleted_documents_name_leaves_the_log_files(tmp_path: Path):
    home, docs = tmp_path / "home", tmp_path / "docs"
    (docs / "matter").mkdir(parents=True)
    (docs / "kept.txt").write_text("The office opens at nine.\n" * 20)
    (docs / "Brightwater-settlement.txt").write_text("The settlement is 1.2 million pounds.\n" * 20)
    (docs / "matter" / "Zanzibar-lease.txt").write_text("The monthly rent is 900 euros.\n" * 20)
    cli(home, "add", str(docs))
    cli(home, "index")
    assert "Brightwater-settlement.txt" in _logs(home) and "Zanzibar-lease.txt" in _logs(home)
    (docs / "Brightwater-settlement.txt").unlink()  # deleted from the folder
    cli(home, "index")
    assert "Brightwater-settlement.txt" not in _logs(home) and "[removed document]" in _logs(home)
    assert "kept.txt" in _logs(home)  # only what was deleted
    cli(home, "remove", str(docs))  # a whole folder out of the index
    assert "Zanzibar-lease.txt" not in _logs(home) and "kept.txt" not in _logs(home)
