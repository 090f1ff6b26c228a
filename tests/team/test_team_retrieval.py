"""Retrieval through team mode's servers equals the laptop's: the same `Retriever` over PostgreSQL and a
Chroma server, loaded from an embedded index, finds the eval set's passages as well as over SQLite and Chroma
on disk (issue 29's acceptance check: hit@5 within 1 point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealroom.core.answer.retriever import Retriever
from sealroom.core.store.postgres import PostgresPassages
from sealroom.core.store.remote_vectors import ChromaServerIndex
from sealroom.core.store.vectorstore import VectorStore
from tests.conftest import CORPUS
from tests.team.chroma_server import ChromaServer

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


@pytest.mark.slow
def test_retrieval_through_the_team_servers_equals_the_embedded_path(
    home: Path, postgres_dsn: str, chroma_server: ChromaServer, tmp_path: Path
):
    from bench.retrieval import questions
    from sealroom.core.answer import evaluate
    from sealroom.core.engine import Engine

    asked = questions()
    with Engine(home) as engine:
        folders = [
            str(evaluate.documents_only(CORPUS / sub, tmp_path / "corpus"))
            for sub in ("pdf-samples", "docx-samples", "email-samples")
        ]
        for folder in folders:
            engine.add_folder(folder)
        engine.index()
        store, embedder = engine.parts.store, engine.parts.embedder
        assert isinstance(store, VectorStore)

        passages = PostgresPassages(postgres_dsn)
        assert passages.load(engine.catalog, {p: [TEAM] for _, p in engine.catalog.folders()}) > 0
        host, port = chroma_server
        index = ChromaServerIndex(str(host), int(port))
        assert copy_vectors(store, index, [TEAM]) == store.count() == index.count()

        embedded = ranks(Retriever(engine.catalog, store, embedder), asked)
        team = ranks(Retriever(passages, index, embedder), asked)
        passages.close()
        index.close()

    n = len(asked)
    laptop_hit = sum(r is not None for r in embedded) / n
    team_hit = sum(r is not None for r in team) / n
    print(f"\nhybrid hit@5 over {n} questions: embedded {laptop_hit:.3f}, team {team_hit:.3f}")
    for q, a, b in zip(asked, embedded, team, strict=True):
        if a != b:
            print(f"  {q['id']}: embedded rank {a}, team rank {b}")
    assert abs(team_hit - laptop_hit) <= 0.01
