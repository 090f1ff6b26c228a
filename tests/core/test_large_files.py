"""A large file streams through the index a step at a time: small files pass it, a stop keeps its progress."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sealroom.core.config import Settings
from sealroom.core.engine import Engine
from sealroom.core.indexer import STEP

pytestmark = pytest.mark.slow

SENTENCE = "Clause {i} of the framework agreement sets the fee for service level {i}. "


class CountingEmbedder:
    """The real embedder, counting the texts it embeds."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.texts = 0

    def warm_up(self) -> None:
        self.inner.warm_up()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)

    def release_memory(self) -> None:
        self.inner.release_memory()


def make_docs(folder: Path) -> None:
    folder.mkdir()
    (folder / "a-huge.txt").write_text("".join(SENTENCE.format(i=i) for i in range(6_000)))
    for i in range(3):
        (folder / f"small-{i}.txt").write_text(f"Control note {i}: the quokka{i} permit is renewed in May.")


def test_small_files_are_not_queued_behind_a_large_one_and_a_stop_resumes_where_it_was(
    home: Path, tmp_path: Path
):
    docs = tmp_path / "docs"
    make_docs(docs)
    settings = Settings(max_chunks_per_file=4 * STEP)
    with Engine(home=home, settings=settings) as engine:
        engine.add_folder(str(docs))
        counting = CountingEmbedder(engine.embedder)
        engine._embedder = counting
        finished: list[str] = []
        engine.emit = lambda e: finished.append(Path(e["path"]).name) if e.get("event") == "indexed" else None
        stop = threading.Event()
        details: list[str] = []
        searchable_early: list[bool] = []

        def progress(done: int, total: int, path: str | None, detail: str) -> None:
            details.append(detail)
            if detail.endswith(f"semantic index {STEP} of {4 * STEP} passages") and not searchable_early:
                # while its vectors are being made, the large file is found by keyword, with its page
                searchable_early.append(
                    any("Clause 1000 " in h.text for h in engine.search("Clause 1000 fee"))
                )
            if detail.endswith(f"semantic index {2 * STEP} of {4 * STEP} passages"):
                stop.set()  # stopped (app closed, or killed) half way through the large file's vectors

        engine.index(progress, stop)
        assert sorted(finished) == ["a-huge.txt", "small-0.txt", "small-1.txt", "small-2.txt"], (
            "every file is indexed (searchable by keyword) as soon as it is parsed"
        )
        assert searchable_early == [True], "the large file was searchable by keyword before its vectors"
        assert f"searchable by keyword; semantic index {STEP} of {4 * STEP} passages" in details, (
            "progress shows the large file's own progress"
        )
        huge = next(f for f in engine.catalog.files() if f.path.endswith("a-huge.txt"))
        assert huge.status == "indexed" and engine.catalog.unembedded() == [huge.sha256]
        pending = engine.status()["semantic_pending"]
        assert pending["files"] == 1 and "searchable by keyword, semantic index pending" in pending["message"]
        assert not any("vector index" in w for w in engine.warnings()), "vectors on their way are not a fault"
        stored_huge = engine.store.count() - 3
        assert 2 * STEP <= stored_huge < 4 * STEP, "the steps done so far are in the vector index"
        embedded_before = counting.texts

        finished.clear()
        engine.index()
        assert finished == [], "nothing is parsed again"
        assert counting.texts - embedded_before == 4 * STEP - stored_huge, (
            "only the passages not stored yet are embedded"
        )
        assert engine.catalog.unembedded() == [] and engine.status()["semantic_pending"]["files"] == 0
        files = {Path(f.path).name: f for f in engine.catalog.files()}
        assert files["a-huge.txt"].status == "indexed" and "first 256 passages" in (
            files["a-huge.txt"].reason or ""
        )
        chunk_ids = {c.id for batch in engine.catalog.all_chunks() for c in batch}
        assert engine.store.ids() == chunk_ids, "nothing duplicated, nothing missing"
        assert "quokka1" in engine.search("quokka1 permit")[0].text


def test_a_deleted_vector_index_is_reported_and_healed_without_rereading(home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The walrus contract is renewed every June by the harbour office.")
    with Engine(home=home) as engine:
        engine.add_folder(str(docs))
        engine.index()
        assert engine.warnings() == [] or all("vector index" not in w for w in engine.warnings())
    (home / "chroma" / "chroma.sqlite3").unlink()
    with Engine(home=home) as engine:
        assert any("vector index is missing" in w for w in engine.warnings())
        assert any("keyword only" in w for w in engine.status()["warnings"])
        engine.index()  # no file changed: the missing vectors are embedded from the catalog
        assert engine.warnings() == [] or all("vector index" not in w for w in engine.warnings())
        assert engine.store.count() == engine.catalog.chunk_count() == 1
