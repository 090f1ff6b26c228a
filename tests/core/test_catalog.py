from pathlib import Path

from sealroom.core.engine import Engine
from sealroom.core.store.catalog import Catalog, Chunk, chunk_id


def test_workspaces_folders_counts_and_chats(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    assert catalog.workspaces() == ["default"]
    catalog.add_folder("/docs/a")
    catalog.add_folder("/docs/b", workspace="Case 12")
    assert catalog.workspaces() == ["default", "Case 12"]
    (fa, _), (fb, _) = catalog.folders()
    catalog.upsert_file(fa, "/docs/a/x.pdf", 1, 1, "s1", "indexed")
    catalog.upsert_file(fa, "/docs/a/y.pdf", 1, 1, "s2", "failed", "parse error: bad xref")
    catalog.upsert_file(fb, "/docs/b/z.pdf", 1, 1, "s3", "pending")
    assert catalog.counts_by_folder() == {"/docs/a": {"indexed": 1, "failed": 1}, "/docs/b": {"pending": 1}}
    assert [(r.path, r.reason) for r in catalog.not_indexed()] == [("/docs/a/y.pdf", "parse error: bad xref")]
    cites = [{"n": 1, "path": "/docs/a/x.pdf"}]
    first = catalog.record_answer(None, "Rent?", "12,000 [1]", cites, {"answer": "12,000 [1]"})
    second = catalog.record_answer(None, "Deadline?", "May [1]", [], {}, workspace="Case 12")
    assert catalog.record_answer(first, "And due?", "monthly", [], {}) == first
    catalog.rename_chat(first, "Rent")
    assert catalog.chats() == [(first, "Rent")] and catalog.chats("Case 12") == [(second, "Deadline?")]
    assert catalog.transcript(first)[:2] == [
        ("user", "Rent?", [], None),
        ("assistant", "12,000 [1]", cites, {"answer": "12,000 [1]"}),
    ]
    assert [role for role, *_ in catalog.transcript(first)] == ["user", "assistant", "user", "assistant"]
    catalog.delete_chat(first)
    assert catalog.chats() == [] and catalog.transcript(first) == []
    catalog.remove_workspace("Case 12")
    assert catalog.workspaces() == ["default"] and catalog.chats("Case 12") == []
    assert [p for _, p in catalog.folders()] == ["/docs/a"]


def test_passage_comes_with_the_rest_of_its_section(home: Path):
    text = "Alpha one. Beta two. Gamma three. Delta four."
    sha = "f" * 64
    pieces = [(0, 20), (11, 33), (21, 45)]  # overlapping chunks of one page, offsets in the page's text
    chunks = [
        Chunk(f"{sha[:32]}-{i}", sha, i, text[a:b].strip(), 3, None, a, a + len(text[a:b].strip()))
        for i, (a, b) in enumerate(pieces)
    ]
    other = Chunk(f"{sha[:32]}-3", sha, 3, "Page four.", 4, None, 0, 10)
    with Engine() as engine:
        engine.catalog.add_folder("/d")
        engine.catalog.upsert_file(engine.catalog.folders()[0][0], "/d/x.pdf", 1, 1, sha, "pending")
        engine.catalog.finish_content(sha, "indexed", None, 4, [*chunks, other])
        passage = engine.passage(sha, 1, 11, 33)
    assert (passage.before, passage.text, passage.after, passage.page) == (
        "Alpha one. ",
        "Beta two. Gamma three.",
        " Delta four.",
        3,
    )


def test_a_version_1_catalog_is_migrated_and_a_newer_one_refused(tmp_path: Path):
    import sqlite3

    import pytest

    from sealroom.core.runtime.errors import SealroomError

    path = tmp_path / "catalog.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE chats (id INTEGER PRIMARY KEY, workspace TEXT NOT NULL DEFAULT 'default', title TEXT NOT NULL,"
        " created_at REAL NOT NULL);"
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
        " role TEXT NOT NULL, text TEXT NOT NULL, citations TEXT, created_at REAL NOT NULL);"
        "INSERT INTO chats VALUES (1, 'default', 'Old chat', 0);"
        "INSERT INTO messages VALUES (1, 1, 'assistant', 'An old answer', '[]', 0);"
    )
    old.commit()
    old.close()
    catalog = Catalog(path)
    assert catalog.get_meta("schema_version") == "3"
    assert catalog.transcript(1) == [("assistant", "An old answer", [], None)]
    catalog.set_meta("schema_version", "99")
    catalog.close()
    with pytest.raises(SealroomError, match="newer Sealroom"):
        Catalog(path)


def test_a_catalog_whose_keyword_index_does_not_stem_is_indexed_again_on_open(tmp_path: Path):
    path = tmp_path / "catalog.sqlite"
    catalog = Catalog(path)
    catalog.add_folder("/docs")
    sha = "ab" * 32
    catalog.upsert_file(catalog.folders()[0][0], "/docs/a.txt", 1, 1, sha, "pending")
    text = "The tenant terminates the lease."
    catalog.finish_content(
        sha, "indexed", None, None, [Chunk(chunk_id(sha, 0), sha, 0, text, None, None, 0, 31)]
    )
    catalog.close()
    import sqlite3

    raw = sqlite3.connect(path)  # the keyword index as schema 2 made it: no stemming
    raw.executescript(
        "DROP TABLE chunks_fts; CREATE VIRTUAL TABLE chunks_fts USING fts5(text, heading, content='chunks',"
        " content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');"
        "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');"
    )
    assert raw.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'terminate'").fetchall() == []
    raw.close()
    catalog = Catalog(path)
    assert [cid for cid, _ in catalog.keyword_search('"terminate"', 5)] == [chunk_id(sha, 0)]


def test_image_files_wait_until_the_text_documents_are_indexed(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    folder = catalog.folders()[0][0]
    for n, name in enumerate(["fax.TIF", "lease.pdf", "scan.png", "notes.txt", "photo.jpg"]):
        catalog.upsert_file(folder, f"/docs/{name}", 1, 10, f"{n}" * 64, "pending")
    order = [Path(r.path).name for r in catalog.pending(10, last=(".png", ".jpg", ".tif"))]
    assert order == ["lease.pdf", "notes.txt", "fax.TIF", "scan.png", "photo.jpg"]
    assert [Path(r.path).name for r in catalog.pending(2)] == ["fax.TIF", "lease.pdf"]  # queued order
    catalog.wait_for_ocr("1" * 64, "waiting for OCR (page 2 is a scan)")  # lease.pdf had a scanned page
    order = [Path(r.path).name for r in catalog.pending(10, last=(".png", ".jpg", ".tif"))]
    assert order == ["notes.txt", "fax.TIF", "scan.png", "photo.jpg", "lease.pdf"]
    assert catalog.file("/docs/lease.pdf").reason == "waiting for OCR (page 2 is a scan)"


def test_chat_list_has_dates_question_counts_and_where_it_was_asked(tmp_path: Path):
    import sqlite3

    path = tmp_path / "catalog.sqlite"
    catalog = Catalog(path)
    window = catalog.record_answer(None, "Rent?", "Monthly", [], {}, origin="window")
    cli = catalog.record_answer(None, "Deposit?", "Two months", [], {}, origin="cli")
    catalog.record_answer(window, "And late fees?", "5 %", [], {})  # used again: now the most recent
    rows = catalog.chat_list()
    assert [(r["id"], r["origin"], r["questions"]) for r in rows] == [(window, "window", 2), (cli, "cli", 1)]
    assert rows[0]["last"] >= rows[1]["last"] >= rows[1]["created"] > 0
    catalog.close()
    # a catalog from before chats knew their origin gains the column, its chats marked unknown
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE chats DROP COLUMN origin")
    db.commit()
    db.close()
    reopened = Catalog(path)
    assert {r["id"]: r["origin"] for r in reopened.chat_list()} == {window: "", cli: ""}
    assert reopened.record_answer(None, "New?", "Yes", [], {}, origin="cli") > cli
    assert reopened.chat_list()[0]["origin"] == "cli"
