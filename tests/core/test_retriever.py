"""Ranking logic of hybrid retrieval (a fake vector ranking; the catalog and its FTS5 index are real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sealroom.core.catalog import Catalog, Chunk, chunk_id
from sealroom.core.retriever import Retriever


class FixedVectors:
    """Stands in for Chroma: returns a fixed similarity ranking."""

    def __init__(self, ranking: list[str]) -> None:
        self.ranking = ranking

    def query(self, embedding: np.ndarray, n: int) -> list[tuple[str, float]]:
        return [(i, 0.9 - 0.01 * r) for r, i in enumerate(self.ranking[:n])]


class NoEmbedder:
    model_id = "none"

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 3), dtype=np.float32)


def add(catalog: Catalog, folder_id: int, name: str, text: str) -> str:
    sha = (name.encode().hex() * 64)[:64]
    catalog.upsert_file(folder_id, f"/docs/{name}", 1, len(text), sha, "pending")
    cid = chunk_id(sha, 0)
    catalog.finish_content(sha, "indexed", None, None, [Chunk(cid, sha, 0, text, None, None, 0, len(text))])
    return cid


def test_an_exact_rare_token_wins_over_junk_that_only_looks_similar(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    folder_id = catalog.folders()[0][0]
    control = add(
        catalog, folder_id, "control.txt", "Permit reference QX7731 was renewed by the harbour office."
    )
    junk = [
        add(catalog, folder_id, f"mutant-{i}.txt", f"perm1t permit permit ren\x00ewed harb0ur permit {i}")
        for i in range(12)
    ]
    # the vector ranking puts the garbled look-alikes first and the control file last
    retriever = Retriever(catalog, FixedVectors([*junk, control]), NoEmbedder())  # type: ignore[arg-type]
    hits = retriever.search("permit QX7731", k=3)
    assert hits[0].chunk_id == control
    # a word found in many passages is not rare: no boost, the ranking is the plain fusion
    hits = retriever.search("permit", k=3)
    assert hits[0].chunk_id in junk
