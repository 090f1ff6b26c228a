"""A large file streams through the index a step at a time: small files pass it, a stop keeps its progress."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sealroom.core.engine import Engine
from sealroom.core.ingest.indexer import STEP
from sealroom.core.runtime.config import Settings

pytestmark = pytest.mark.slow

SENTENCE = "Clause {i} of the framework agreement sets the fee for service level {i}. "


class CountingEmbedder:
    """The real embedder, counting the texts it embeds."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.texts = 0
        self.calls = 0

    def warm_up(self) -> None:
        self.inner.warm_up()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        self.calls += 1
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
        counting = CountingEmbedder(engine.parts.embedder)
        engine.parts.use_embedder(counting)
        finished: list[str] = []
        engine.emit = lambda e: finished.append(Path(e["path"]).name) if e.get("event") == "indexed" else None
        stop = threading.Event()
        details: list[str] = []
        searchable_early: list[bool] = []
        huge_embedded = [0]
        inner_embed = counting.embed

        def embed_then_stop(texts: list[str]) -> np.ndarray:
            vectors = inner_embed(texts)
            if threading.current_thread().name.startswith("sealroom-embed"):  # not a search's query
                huge_embedded[0] += sum("Clause" in t for t in texts)
            if huge_embedded[0] >= 2 * STEP:
                # stopped (app closed, or killed) half way through the large file's vectors. A step
                # takes passages of several files, so this counts the large file's own, whichever
                # file a step starts with; at most one more step is under way, so some are left
                stop.set()
            return vectors

        counting.embed = embed_then_stop  # type: ignore[method-assign]

        def progress(done: int, total: int, path: str | None, detail: str) -> None:
            details.append(detail)
            if huge_embedded[0] and not searchable_early:
                # while its vectors are being made, the large file is found by keyword, with its page
                searchable_early.append(
                    any("Clause 1000 " in h.text for h in engine.search("Clause 1000 fee"))
                )

        engine.index(progress, stop)
        assert sorted(finished) == ["a-huge.txt", "small-0.txt", "small-1.txt", "small-2.txt"], (
            "every file is indexed (searchable by keyword) as soon as it is parsed"
        )
        assert searchable_early == [True], "the large file was searchable by keyword before its vectors"
        assert any(
            re.search(rf"searchable by keyword; semantic index \d+ of {4 * STEP} passages", d)
            for d in details
        ), "progress shows the large file's own progress"
        files = {Path(f.path).name: f for f in engine.catalog.files()}
        huge = files["a-huge.txt"]
        unembedded = engine.catalog.unembedded()
        # a small file parsed during the step that stopped may still wait for its one vector
        assert huge.status == "indexed" and huge.sha256 in unembedded
        assert set(unembedded) <= {f.sha256 for f in files.values()}
        pending = engine.status()["semantic_pending"]
        assert pending["files"] == len(unembedded)
        assert "searchable by keyword, semantic index pending" in pending["message"]
        assert not any("vector index" in w for w in engine.warnings()), "vectors on their way are not a fault"
        stored_huge = len(engine.parts.store.ids() & {c.id for c in engine.catalog.chunks_of(huge.sha256)})
        assert 2 * STEP <= stored_huge < 4 * STEP, "the steps done so far are in the vector index"
        embedded_before = counting.texts

        finished.clear()
        engine.index()
        assert finished == [], "nothing is parsed again"
        assert counting.texts - embedded_before == 4 * STEP - stored_huge + len(unembedded) - 1, (
            "only the passages not stored yet are embedded"
        )
        assert engine.catalog.unembedded() == [] and engine.status()["semantic_pending"]["files"] == 0
        files = {Path(f.path).name: f for f in engine.catalog.files()}
        assert files["a-huge.txt"].status == "indexed" and "first 256 passages" in (
            files["a-huge.txt"].reason or ""
        )
        chunk_ids = {c.id for batch in engine.catalog.all_chunks() for c in batch}
        assert engine.parts.store.ids() == chunk_ids, "nothing duplicated, nothing missing"
        assert "quokka1" in engine.search("quokka1 permit")[0].text


def test_a_step_is_embedded_while_the_one_before_is_stored_and_files_finish_only_when_stored(
    home: Path, tmp_path: Path
):
    """Chroma's write of one step overlaps the embedding of the next; a file leaves the unembedded list
    only once every one of its vectors is in the vector index (a crash then loses nothing)."""
    docs = tmp_path / "docs"
    make_docs(docs)
    with Engine(home=home, settings=Settings(max_chunks_per_file=4 * STEP)) as engine:
        engine.add_folder(str(docs))
        counting = CountingEmbedder(engine.parts.embedder)
        engine.parts.use_embedder(counting)
        store, catalog = engine.parts.store, engine.catalog
        spans: list[tuple[str, float, float]] = []
        upsert, embed, mark = store.upsert, counting.embed, catalog.mark_embedded

        def slow_upsert(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            time.sleep(0.3)  # a slow disk: the next step is embedded meanwhile
            try:
                return upsert(*args, **kwargs)
            finally:
                spans.append(("store", started, time.perf_counter()))

        def timed_embed(texts: list[str]) -> np.ndarray:
            started = time.perf_counter()
            try:
                return embed(texts)
            finally:
                spans.append(("embed", started, time.perf_counter()))

        marked: list[str] = []

        def checked_mark(sha256: str | None = None) -> None:
            assert sha256 is not None
            ids = {c.id for c in catalog.chunks_of(sha256)}
            assert ids <= store.ids(), "a file is marked embedded only when all its vectors are stored"
            marked.append(sha256)
            mark(sha256)

        store.upsert, counting.embed, catalog.mark_embedded = slow_upsert, timed_embed, checked_mark  # type: ignore[method-assign]
        engine.index()
        assert sorted(marked) == sorted({f.sha256 for f in catalog.files()}) and catalog.unembedded() == []
        stores = [(a, b) for kind, a, b in spans if kind == "store"]
        embeds = [(a, b) for kind, a, b in spans if kind == "embed"]
        assert len(stores) >= 4 and any(
            a < s_end and b > s_start for a, b in embeds for s_start, s_end in stores
        ), "an embedding step ran while a step was being written"
        assert store.ids() == {c.id for batch in catalog.all_chunks() for c in batch}


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
        assert engine.parts.store.count() == engine.catalog.chunk_count() == 1


NOTICE = (
    "## Confidentiality notice\n\nThis message and its attachments are privileged and confidential. "
    "If you are not the intended recipient, notify the sender and delete every copy at once.\n\n"
)


def test_small_files_share_embedding_steps_and_a_repeated_passage_is_embedded_once(
    home: Path, tmp_path: Path
):
    docs = tmp_path / "mail"
    docs.mkdir()
    for i in range(40):  # forty short notes, each with the same notice and one fact of its own
        (docs / f"note-{i:02}.md").write_text(f"{NOTICE}## Matter {i}\n\nThe wombat{i} lease ends in June.\n")
    with Engine(home=home) as engine:
        engine.add_folder(str(docs))
        counting = CountingEmbedder(engine.parts.embedder)
        committed = threading.Event()
        inner_embed = counting.embed

        def slow_embed(texts: list[str]) -> np.ndarray:  # the first step lasts until every note is parsed
            assert committed.wait(60)
            return inner_embed(texts)

        counting.embed = slow_embed  # type: ignore[method-assign]
        engine.parts.use_embedder(counting)
        indexed: list[str] = []

        def emit(event: dict[str, Any]) -> None:
            if event.get("event") == "indexed":
                indexed.append(event["path"])
                if len(indexed) == 40:
                    committed.set()

        engine.emit = emit
        summary = engine.index()
        assert summary.files == 40 and summary.chunks == 80
        assert counting.texts == 41, "the notice is embedded once, each note's own passage once"
        assert counting.calls <= 3, (
            f"the notes parsed during a step share the next ones ({counting.calls} embedding calls)"
        )
        chunk_ids = {c.id for batch in engine.catalog.all_chunks() for c in batch}
        assert engine.parts.store.ids() == chunk_ids, "every passage has its vector, the repeated ones too"
        assert engine.catalog.unembedded() == []
        notice = engine.parts.embedder.embed([NOTICE.split("\n\n", 1)[1].strip()])[0]
        nearest = dict(engine.parts.store.query(notice, 40))
        notice_ids = {c.id for batch in engine.catalog.all_chunks() for c in batch if "privileged" in c.text}
        assert len(notice_ids) == 40 and notice_ids <= set(nearest), "each note's notice has its vector"
        assert max(nearest[i] for i in notice_ids) - min(nearest[i] for i in notice_ids) < 1e-5, (
            "the one vector, stored for each of them"
        )
        assert "wombat7" in engine.search("wombat7 lease")[0].text


def test_a_failed_vector_write_on_a_full_disk_says_disk_full_and_other_failures_keep_their_words(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from sealroom.core.ingest.indexer import Indexer
    from sealroom.core.runtime.errors import DiskFull

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The walrus contract is renewed every June by the harbour office.")
    with Engine(home=home) as engine:
        engine.add_folder(str(docs))
        engine.parts.store  # noqa: B018 - opened before its write is made to fail

        def fail(*args: Any, **kwargs: Any) -> None:  # Chroma's words when its disk filled mid-write
            raise RuntimeError("Error in compaction: Failed to apply logs to the metadata segment")

        monkeypatch.setattr(engine.parts.store, "upsert", fail)
        with pytest.raises(RuntimeError, match="compaction"):
            engine.index()  # plenty of space: the error is not disguised as a full disk
        full = iter([False, True])  # room before the step, none left when the write failed
        monkeypatch.setattr(Indexer, "_short_of_space", lambda self, chunks: next(full, True))
        with pytest.raises(DiskFull):
            engine.index()
        assert engine.catalog.unembedded(), (
            "the file stays searchable by keyword, its vector listed as missing"
        )
