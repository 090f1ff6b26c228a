"""Team mode's passages in a real PostgreSQL (core/store/postgres.py): the matter wall holds inside every
read, a SQLite catalog loads faithfully, and keyword search finds the eval set's passages about as well as
FTS5 does."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealroom.core.answer.retriever import keyword_query
from sealroom.core.protocols import Hit
from sealroom.core.runtime.errors import ServerBusy
from sealroom.core.store.catalog import Catalog, Chunk, chunk_id
from sealroom.core.store.postgres import PostgresPassages, match_terms
from tests.conftest import CORPUS

CANARY = "zorblaxite"
A, B = "/matters/acme", "/matters/bolt"
#: (folder, file name, passages): the canary is only in A's folder, its word and its file name
FILES = [
    (
        A,
        f"{CANARY}-memo.txt",
        [f"{CANARY.upper()} MEMO", f"The {CANARY} settlement is 4.2 million.", "Shared words."],
    ),
    (A, "acme-board.txt", ["Board minutes", "The board approved the merger with the tenant."]),
    (B, "bolt-lease.txt", ["Lease of the warehouse", "The tenant pays rent monthly; the merger is off."]),
    (B, "bolt-copy.txt", ["Board minutes", "The board approved the merger with the tenant."]),  # A's copy
]


def _sha(folder: str, name: str, parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _catalog(path: Path) -> Catalog:
    catalog = Catalog(path)
    for folder in (A, B):
        catalog.add_folder(folder)
    ids = {p: i for i, p in catalog.folders()}
    for folder, name, parts in FILES:
        sha = _sha(folder, name, parts)
        catalog.upsert_file(ids[folder], f"{folder}/{name}", 10, 100, sha, "pending")
        chunks, pos = [], 0
        for seq, text in enumerate(parts):
            chunks.append(Chunk(chunk_id(sha, seq), sha, seq, text, 1, None, pos, pos + len(text)))
            pos += len(text) + 1
        catalog.finish_content(sha, "indexed", None, 1, chunks)
    return catalog


@pytest.fixture
def walled(tmp_path: Path, postgres_dsn: str) -> Iterator[PostgresPassages]:
    catalog = _catalog(tmp_path / "catalog.sqlite")
    team = PostgresPassages(postgres_dsn)
    assert team.load(catalog, {A: ["A"], B: ["B"]}) == len(FILES)
    catalog.close()
    yield team
    team.close()


def test_the_retrievers_match_strings_are_read_as_any_of_their_terms():
    assert match_terms('"rent" OR "tenant"') == ["rent", "tenant"]
    assert match_terms('"say ""hello""" OR "2.1"') == ['say "hello"', "2.1"]
    assert match_terms("lease OR rent") == ["lease", "rent"]
    assert match_terms(keyword_query("What rent does the tenant pay?") or "") == ["rent", "tenant", "pay"]


def test_the_matter_wall_holds_inside_every_read(walled: PostgresPassages):
    canary = _sha(*FILES[0][:2], FILES[0][2])
    board = _sha(*FILES[1][:2], FILES[1][2])
    canary_ids = [chunk_id(canary, seq) for seq in range(3)]
    queries = [
        f'"{CANARY}"',
        keyword_query(f"What does the {CANARY} memo say about the settlement?"),
        keyword_query(f"{CANARY}-memo.txt"),
        '"settlement" OR "million" OR "memo" OR "shared"',
        '"4.2"',
    ]
    checked = 0

    def wall(groups: list[str]) -> set[str]:
        """What of the canary's content `groups` can reach, through every read."""
        nonlocal checked
        seen: set[str] = set()
        for match in queries:
            assert match
            seen |= {i for i, _ in walled.keyword_search(match, 20, groups=groups)}
            seen |= {i for i, _ in walled.keyword_search(match, 20, within=[canary], groups=groups)}
            checked += 2
        seen |= set(walled.chunks_by_id(canary_ids, groups=groups))
        seen |= {c.id for c in walled.chunks_at([(canary, 0), (canary, 1)], groups=groups).values()}
        seen |= {c.id for c in walled.chunks_of(canary, groups=groups)}
        seen |= walled.rare_matches([CANARY, "settlement", "4.2"], 5, groups=groups)
        names = walled.document_names(groups=groups)
        seen |= {f"name:{p}" for s, p, first in names if s == canary or CANARY in (p + first).lower()}
        seen |= {f"file:{f.path}" for f in walled.files_for_content([canary], groups=groups)[canary]}
        seen |= {f"word:{w}" for w in walled.known_words([CANARY, "settlement"], groups=groups)}
        checked += 9
        return seen

    assert wall(["B"]) == set()
    assert wall([]) == set()
    reached = wall(["A"])
    assert set(canary_ids) <= reached and {f"word:{CANARY}", f"file:{A}/{CANARY}-memo.txt"} <= reached
    assert wall(["B", "A"]) == reached
    assert wall(["B"]) == set()  # and still nothing once A has read
    print(f"\n{checked} wall reads checked")
    assert checked >= 50

    # a content in both folders: each side sees it under its own file name only
    owners = walled.files_for_content([board], groups=["B"])[board]
    assert [f.path for f in owners] == [f"{B}/bolt-copy.txt"]
    assert [f.path for f in walled.files_for_content([board], groups=["A"])[board]] == [f"{A}/acme-board.txt"]
    assert {p for _, p, _ in walled.document_names(groups=["B"])} == {
        f"{B}/bolt-lease.txt",
        f"{B}/bolt-copy.txt",
    }
    # counts are of what the caller may see: 'merger' is in 2 contents, both B's, 1 of them A's
    lease = _sha(*FILES[2][:2], FILES[2][2])
    assert walled.rare_matches(["warehouse"], 1, groups=["B"]) == {chunk_id(lease, 0)}
    assert walled.rare_matches(["merger"], 1, groups=["B"]) == set()  # the board copy is B's too
    assert walled.rare_matches(["merger"], 1, groups=["A"]) == {chunk_id(board, 1)}
    # no wall (the laptop): everything
    assert set(canary_ids) <= {i for i, _ in walled.keyword_search(f'"{CANARY}" OR "shared"', 20)}


def test_a_catalog_loads_faithfully_and_the_writes_keep_it(tmp_path: Path, postgres_dsn: str):
    catalog = _catalog(tmp_path / "catalog.sqlite")
    team = PostgresPassages(postgres_dsn)
    team.load(catalog, {A: ["A"], B: ["B"]})
    team.load(catalog, {A: ["A"], B: ["B"]})  # loading again replaces, never doubles
    shas = {f.sha256 for f in catalog.files()}
    for sha in shas:
        assert team.chunks_of(sha) == catalog.chunks_of(sha)
    ours = team.files_for_content(shas)
    theirs = catalog.files_for_content(shas)
    assert {s: [f.path for f in v] for s, v in ours.items()} == {
        s: [f.path for f in v] for s, v in theirs.items()
    }
    assert sorted(team.document_names()) == sorted(catalog.document_names())
    assert team.known_words(["tenant", "warehouses", "spain"]) == catalog.known_words(
        ["tenant", "warehouses", "spain"]
    )
    match = '"tenant" OR "merger" OR "rent"'
    assert {i for i, _ in team.keyword_search(match, 10)} == {i for i, _ in catalog.keyword_search(match, 10)}

    # a second process opening the same database finds the schema and the passages
    again = PostgresPassages(postgres_dsn)
    assert len(again.document_names()) == len(FILES)
    again.close()

    # the writes the team service will use
    lease = _sha(*FILES[2][:2], FILES[2][2])
    assert team.remove_file(f"{B}/bolt-lease.txt") and not team.remove_file(f"{B}/bolt-lease.txt")
    assert team.files_for_content([lease])[lease] == []
    assert set(team.orphan_chunk_ids()) == {chunk_id(lease, seq) for seq in range(2)}
    team.delete_chunks(team.orphan_chunk_ids())
    assert team.chunks_of(lease) == [] and team.keyword_search('"warehouse"', 5) == []
    team.upsert_file(f"{B}/new.txt", "f" * 64, "pending", B, 1, 2, ["B"])
    new = [Chunk(chunk_id("f" * 64, 0), "f" * 64, 0, "A new warehouse lease.", None, "Lease", 0, 22)]
    assert team.finish_content("f" * 64, "indexed", None, None, new) == [f"{B}/new.txt"]
    assert [i for i, _ in team.keyword_search('"warehouse"', 5, groups=["B"])] == [new[0].id]
    assert team.keyword_search('"warehouse"', 5, groups=["A"]) == []
    team.close()
    catalog.close()


def _hit_at_5(reads, questions) -> float:
    from bench.retrieval import found

    hits = 0
    for q in questions:
        match = keyword_query(q["question"])
        ranked = reads.keyword_search(match, 5) if match else []
        chunks = reads.chunks_by_id([i for i, _ in ranked])
        owners = reads.files_for_content(c.sha256 for c in chunks.values())
        listed = [
            Hit.of_chunk(chunks[i], owners[chunks[i].sha256][0].path, score)
            for i, score in ranked
            if i in chunks and owners[chunks[i].sha256]
        ]
        hits += found(listed, q) is not None
    return hits / len(questions)


@pytest.mark.slow
def test_keyword_search_finds_the_eval_sets_passages_about_as_well_as_fts5(
    home: Path, postgres_dsn: str, tmp_path: Path
):
    from bench.retrieval import questions
    from sealroom.core.answer import evaluate
    from sealroom.core.engine import Engine

    with Engine(home) as engine:
        for sub in ("pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(str(evaluate.documents_only(CORPUS / sub, tmp_path / "corpus")))
        engine.index()
        team = PostgresPassages(postgres_dsn)
        team.load(engine.catalog, {})
        asked = questions()
        fts5 = _hit_at_5(engine.catalog, asked)
        postgres = _hit_at_5(team, asked)
        team.close()
    print(
        f"\nkeyword search alone, hit@5 over {len(asked)} questions: FTS5 {fts5:.3f}, PostgreSQL {postgres:.3f}"
    )
    assert postgres >= fts5 - 0.10


def test_every_connection_in_use_is_busy_not_unreachable(
    walled: PostgresPassages, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader who waits too long for a connection is told the catalog is busy (the service sends 503 with
    `busy`, and the laptop says "busy"): the server answers, so it is not said to be down."""
    from sealroom.core.store import postgres

    monkeypatch.setattr(postgres, "POOL_WAIT_S", 0.2)
    monkeypatch.setattr(postgres, "BUSY_WAIT_S", 0.5)
    one = PostgresPassages(postgres_dsn, connections=1)
    try:
        held = one._connection()  # the only connection, held
        with held, pytest.raises(ServerBusy, match="is busy: every connection was in use"):
            one.document_names(groups=["A"])
        assert one.document_names(groups=["A"])  # released: answers again
    finally:
        one.close()


def test_a_file_name_that_is_not_utf8_is_stored_and_found_exactly(tmp_path: Path, postgres_dsn: str) -> None:
    """Linux file names are bytes: one that is not UTF-8 (a Latin-1 name on an old share) reaches Python
    with surrogates, which PostgreSQL text cannot hold. It is published, found and removed with its exact
    name, and a literal U+10FFFD (the escape character) in a name or a passage comes back unchanged."""
    import os

    folder = os.fsdecode(str(tmp_path / "matters").encode() + b"/caf\xe9")  # the folder's name too
    odd = f"{folder}/r\udce9sum\udce9 \U0010fffd0041.txt"
    text = "The r\u00e9sum\u00e9 lists the \U0010fffd0041 clause and the Quillfeather retainer."
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder(folder)
    folder_id = dict((p, i) for i, p in catalog.folders())[folder]
    sha = hashlib.sha256(text.encode()).hexdigest()
    catalog.upsert_file(folder_id, odd, 10, 100, sha, "pending")
    catalog.finish_content(sha, "indexed", None, 1, [Chunk(chunk_id(sha, 0), sha, 0, text, 1, None, 0, 80)])
    team = PostgresPassages(postgres_dsn)
    try:
        assert team.load(catalog, {folder: ["A"]}) == 1
        [(found, _)] = team.keyword_search('"Quillfeather"', 5, groups=["A"])
        assert team.chunks_by_id([found], groups=["A"])[found].text == text
        [row] = team.files_for_content([sha], groups=["A"])[sha]
        assert row.path == odd and os.fsencode(row.path).endswith(b"/r\xe9sum\xe9 \xf4\x8f\xbf\xbd0041.txt")
        assert [n[1] for n in team.document_names(groups=["A"])] == [odd]
        assert team.remove_file(odd)
        assert not team.files_for_content([sha], groups=["A"]).get(sha)
    finally:
        team.remove_file(odd)
        team.close()
        catalog.close()
