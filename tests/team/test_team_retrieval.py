"""Retrieval through team mode's servers equals the laptop's: the same `Retriever` over PostgreSQL and a
Chroma server, loaded from an embedded index, finds the eval set's passages as well as over SQLite and Chroma
on disk (issue 29's acceptance check: hit@5 within 1 point)."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sealroom.core.answer.retriever import Retriever
from sealroom.core.runtime.errors import UsageError
from sealroom.core.store.catalog import Catalog
from sealroom.core.store.postgres import PostgresPassages
from sealroom.core.store.remote_vectors import ChromaServerIndex
from sealroom.core.store.vectorstore import VectorStore
from tests.conftest import CORPUS
from tests.fakes import FakeEmbedder, FakeVectors
from tests.team.chroma_server import ChromaServer
from tests.team.test_postgres import CANARY, FILES, A, B, _catalog, _sha

TEAM = "firm"  # every folder in one group


def copy_vectors(store: VectorStore, index: ChromaServerIndex, groups: list[str]) -> int:
    """Every vector of the embedded store, with its id, document and fingerprint, into the server's index."""
    copied = 0
    for ids, embeddings, shas, prints in store.export():
        index.upsert(ids, embeddings, shas, prints, groups=[groups] * len(ids))
        copied += len(ids)
    return copied


def ranks(retriever: Retriever, asked: list[dict[str, Any]]) -> list[int | None]:
    from bench.retrieval import found

    return [found(retriever.search(q["question"], k=5), q) for q in asked]


def both_paths(
    home: Path, dsn: str, chroma: ChromaServer, folders: list[str], asked: list[dict[str, Any]]
) -> tuple[list[int | None], list[int | None]]:
    """`asked`'s ranks (hit@5) through the laptop's index of `folders`, and through PostgreSQL and a Chroma
    server loaded from it, with the same `Retriever` and embedder."""
    from sealroom.core.engine import Engine

    with Engine(home) as engine:
        for folder in folders:
            engine.add_folder(folder)
        engine.index()
        store, embedder = engine.parts.store, engine.parts.embedder
        assert isinstance(store, VectorStore)
        passages = PostgresPassages(dsn)
        assert passages.load(engine.catalog, {p: [TEAM] for _, p in engine.catalog.folders()}) > 0
        host, port = chroma
        index = ChromaServerIndex(str(host), int(port))
        assert copy_vectors(store, index, [TEAM]) == store.count() == index.count()
        embedded = ranks(Retriever(engine.catalog, store, embedder), asked)
        team = ranks(Retriever(passages, index, embedder), asked)
        passages.close()
        index.close()
    return embedded, team


def same_quality(asked: list[dict[str, Any]], embedded: list[int | None], team: list[int | None]) -> None:
    n = len(asked)
    laptop_hit = sum(r is not None for r in embedded) / n
    team_hit = sum(r is not None for r in team) / n
    print(f"\nhybrid hit@5 over {n} questions: embedded {laptop_hit:.3f}, team {team_hit:.3f}")
    for q, a, b in zip(asked, embedded, team, strict=True):
        if a != b:
            print(f"  {q['id']}: embedded rank {a}, team rank {b}")
    assert abs(team_hit - laptop_hit) <= 0.01


@pytest.mark.slow
def test_retrieval_through_the_team_servers_equals_the_embedded_path(
    home: Path, postgres_dsn: str, chroma_server: ChromaServer, tmp_path: Path
):
    from bench.retrieval import questions
    from sealroom.core.answer import evaluate

    asked = questions()
    folders = [
        str(evaluate.documents_only(CORPUS / sub, tmp_path / "corpus"))
        for sub in ("pdf-samples", "docx-samples", "email-samples")
    ]
    same_quality(asked, *both_paths(home, postgres_dsn, chroma_server, folders, asked))


@pytest.mark.slow
def test_retrieval_through_the_team_servers_equals_the_embedded_path_on_real_documents(
    home: Path, postgres_dsn: str, chroma_server: ChromaServer
):
    """The same on the real-document eval (manuals, a PDF manual, licences nobody here wrote), all of its
    answerable questions; each split's figure is printed too. Nothing is tuned here: the two paths' keyword
    rankings (bm25 and ts_rank) differ near the cut, in either direction (on 2026-12-07: dev, team 0.943
    against 0.920; test, 0.943 against 0.954; all, 0.943 against 0.937)."""
    import json

    real = Path(__file__).resolve().parents[2] / "bench" / "eval" / "real"
    rows = [json.loads(line) for line in (real / "questions.jsonl").read_text().splitlines() if line.strip()]
    asked = [q for q in rows if not q.get("unanswerable") and q.get("answers")]
    assert len(asked) >= 150
    folders = [str(real / "docs" / corpus) for corpus in sorted({q["corpus"] for q in rows})]
    embedded, team = both_paths(home, postgres_dsn, chroma_server, folders, asked)
    for split in ("dev", "test"):
        mine = [i for i, q in enumerate(asked) if q.get("split") == split]
        laptop = sum(embedded[i] is not None for i in mine) / len(mine)
        served = sum(team[i] is not None for i in mine) / len(mine)
        print(f"\n{split} split, {len(mine)} questions: hit@5 embedded {laptop:.3f}, team {served:.3f}")
    same_quality(asked, embedded, team)


class WordsEmbedder(FakeEmbedder):
    """Each word hashed into one of 64 dimensions: a question naming the canary lies nearest its passages."""

    dimension = 64

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, hashlib.sha256(word.encode()).digest()[0] % self.dimension] += 1.0
            out[row, 0] += 0.01  # never the zero vector
        return out


@pytest.fixture
def team_retriever(tmp_path: Path, postgres_dsn: str, chroma_server: ChromaServer) -> Iterator[Retriever]:
    """test_postgres.py's two matters (the canary only in A's folder) behind a Retriever over both servers;
    each vector carries the groups of the folders that hold its content."""
    catalog: Catalog = _catalog(tmp_path / "catalog.sqlite")
    passages = PostgresPassages(postgres_dsn)
    passages.load(catalog, {A: ["A"], B: ["B"]})
    host, port = chroma_server
    index = ChromaServerIndex(str(host), int(port))
    embedder = WordsEmbedder()
    readers: dict[str, set[str]] = {}
    for folder, name, parts in FILES:
        readers.setdefault(_sha(folder, name, parts), set()).add("A" if folder == A else "B")
    for sha, groups in readers.items():
        chunks = catalog.chunks_of(sha)
        vectors = embedder.embed([c.text for c in chunks])
        index.upsert(
            [c.id for c in chunks], vectors, [sha] * len(chunks), groups=[sorted(groups)] * len(chunks)
        )
    catalog.close()
    yield Retriever(passages, index, embedder)
    passages.close()
    index.close()


def test_the_matter_wall_holds_through_the_whole_retriever(team_retriever: Retriever):
    canary = _sha(*FILES[0][:2], FILES[0][2])
    subjects = [
        CANARY,
        f"{CANARY}-memo.txt",
        f"the {CANARY} memo",
        "settlement",
        "4.2 million",
        "shared words",
    ]
    frames = [
        "{}",
        "What does the {} say?",
        "Find {} in the memo",
        "Who approved the merger and the {}?",
        "{} tenant rent warehouse",
        "version 4.2 of {}",
        "Is there anything about {} in the board minutes?",
        "{} settlement {}",
    ]
    contexts = ["", f"Tell me about {CANARY}", "the lease"]
    queries = [f.replace("{}", s) for f, s in itertools.product(frames, subjects)]
    queries += [f"{CANARY.upper()} MEMO", "zorblax", "memo", "million", "board", "lease"]
    runs = [(q, c, k) for q in queries for c in contexts for k in (5, 20)]
    assert len(runs) >= 200
    for query, context, k in runs:
        hits = team_retriever.search(query, k=k, context=context, groups=["B"])
        for hit in hits:
            assert hit.sha256 != canary and CANARY not in hit.text.lower() and CANARY not in hit.path, query
            assert hit.path.startswith(B), (query, hit.path)
    # the same questions behind A's wall reach the canary, and a reader in no group reads nothing
    assert any(h.sha256 == canary for h in team_retriever.search(CANARY, groups=["A"]))
    assert any(h.sha256 == canary for h in team_retriever.search(f"{CANARY}-memo.txt", groups=["B", "A"]))
    assert team_retriever.search(CANARY, groups=[]) == []
    print(f"\n{len(runs)} walled searches, none reached the canary")


def test_a_wall_is_never_asked_of_parts_without_one(tmp_path: Path):
    """The laptop's parts take no groups: a walled search over them is refused, never read unwalled."""
    catalog = _catalog(tmp_path / "catalog.sqlite")
    retriever = Retriever(catalog, FakeVectors(), WordsEmbedder())
    assert retriever.search("merger")  # no wall: as on the laptop
    with pytest.raises(UsageError, match="no matter walls"):
        retriever.search("merger", groups=["B"])
    # each of the laptop's reads refuses a wall itself (the protocols' `groups`), not only the retriever
    for read in (
        lambda: catalog.keyword_search('"merger"', 5, groups=["B"]),
        lambda: catalog.chunks_by_id(["x"], groups=["B"]),
        lambda: catalog.document_names(groups=["B"]),
        lambda: catalog.files_for_content(["x"], groups=["B"]),
        lambda: catalog.known_words(["merger"], groups=["B"]),
        lambda: catalog.rare_matches(["merger"], 3, groups=["B"]),
        lambda: catalog.chunks_at([("x", 0)], groups=["B"]),
        lambda: catalog.chunks_of("x", groups=["B"]),
    ):
        with pytest.raises(UsageError, match="no matter walls"):
            read()
    catalog.close()
