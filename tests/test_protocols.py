"""The contracts of the seams (core/protocols.py, the destination `Writer`): the same checks run on each
real component and on its fake in tests/fakes.py, so a unit test with a fake proves something about the
real thing, and a new implementation (team mode's servers) has its checks written already."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sealroom.core.output.destinations import Destination, FolderWriter, Writer
from sealroom.core.protocols import Generator, PassageReads, VectorIndex
from sealroom.core.runtime.errors import SealroomError
from sealroom.core.store.catalog import Catalog, Chunk, chunk_id
from tests.fakes import FakeEmbedder, FakeModel, FakeVectors, MemoryWriter
from tests.team.conftest import (  # noqa: F401 (team mode's servers, shared with tests/team)
    llm_server,
    llm_server_model,
    postgres_dsn,
    postgres_server,
)


# --- the vector index -------------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "chroma", "chroma-server"])
def vectors(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    if request.param == "memory":
        yield FakeVectors()
        return
    if request.param == "chroma-server":  # team mode: `chroma run` on loopback (tests/team/conftest.py)
        from sealroom.core.store.remote_vectors import ChromaServerIndex
        from tests.team.chroma_server import run_chroma

        with run_chroma(tmp_path / "chroma-server") as server:
            index = ChromaServerIndex(server.host, server.port)
            yield index
            index.close()
        return
    from sealroom.core.store.vectorstore import VectorStore

    store = VectorStore(tmp_path / "chroma", FakeEmbedder())
    yield store
    store.close()


def _unit(*values: float) -> np.ndarray:
    v = np.array([*values, *[0.0] * (8 - len(values))], dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_vector_index_finds_the_nearest_first_and_forgets_what_is_deleted(vectors: VectorIndex):
    ids = ["a-0", "a-1", "b-0"]
    vectors.upsert(
        ids, np.stack([_unit(1), _unit(1, 1), _unit(0, 1)]), ["a", "a", "b"], ["pa0", "pa1", "pb0"]
    )
    assert vectors.count() == 3 and vectors.ids() == set(ids)
    nearest = vectors.query(_unit(1, 0.1), 2)
    assert [i for i, _ in nearest] == ["a-0", "a-1"]
    assert nearest[0][1] > nearest[1][1] and nearest[0][1] == pytest.approx(
        0.995, abs=0.01
    )  # cosine similarity
    assert vectors.fingerprints(["a-1", "b-0", "x-9"]) == {"a-1": "pa1", "b-0": "pb0"}

    vectors.upsert(["a-0"], np.stack([_unit(0, 0, 1)]), ["a"])  # a new vector replaces the old one
    assert vectors.count() == 3 and vectors.query(_unit(0, 0, 1), 1)[0][0] == "a-0"
    vectors.delete(["a-1", "never-stored"])
    vectors.vacuum()
    assert vectors.ids() == {"a-0", "b-0"} and "a-1" not in [i for i, _ in vectors.query(_unit(1, 1), 5)]
    vectors.reset()
    assert vectors.count() == 0 and vectors.query(_unit(1), 3) == []


# --- the catalog's passage reads -------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def passages(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PassageReads]:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    folder = catalog.folders()[0][0]
    texts = {
        "lease.txt": ["DEED OF LEASE", "The tenant pays rent monthly.", "Notice QX7731 ends the lease."],
        "canteen.txt": ["The canteen opens at noon on weekdays."],
    }
    for name, parts in texts.items():
        sha = hashlib.sha256(name.encode()).hexdigest()
        catalog.upsert_file(folder, f"/docs/{name}", 1, 100, sha, "pending")
        chunks, pos = [], 0
        for seq, text in enumerate(parts):
            chunks.append(Chunk(chunk_id(sha, seq), sha, seq, text, 1, None, pos, pos + len(text)))
            pos += len(text) + 1
        catalog.finish_content(sha, "indexed", None, 1, chunks)
    if request.param == "sqlite":
        yield catalog
        return
    from sealroom.core.store.postgres import PostgresPassages  # team mode: the same passages, loaded

    team = PostgresPassages(request.getfixturevalue("postgres_dsn"))
    assert team.load(catalog, {"/docs": ["staff"]}) == 2
    catalog.close()
    yield team
    team.close()


def test_passage_reads_find_words_documents_and_rare_codes(passages: PassageReads):
    lease = hashlib.sha256(b"lease.txt").hexdigest()
    ranked = passages.keyword_search('"rent" OR "tenant"', 5)
    assert [i for i, _ in ranked] == [chunk_id(lease, 1)]
    assert passages.keyword_search('"noon"', 5, within=[lease]) == []
    assert passages.known_words(["tenant", "weekdays", "spain"]) == {"tenant", "weekdays"}
    names = {path: first for _, path, first in passages.document_names()}
    assert names == {
        "/docs/lease.txt": "DEED OF LEASE",
        "/docs/canteen.txt": "The canteen opens at noon on weekdays.",
    }
    assert passages.rare_matches(["qx7731", "the"], 1) == {chunk_id(lease, 2)}
    assert [c.seq for c in passages.chunks_of(lease)] == [0, 1, 2]
    by_id = passages.chunks_by_id([chunk_id(lease, 2), "gone-0"])
    assert list(by_id) == [chunk_id(lease, 2)] and by_id[chunk_id(lease, 2)].text.startswith("Notice QX7731")
    assert set(passages.chunks_at([(lease, 0), (lease, 9)])) == {(lease, 0)}
    owners = passages.files_for_content([lease, "0" * 64])
    assert [f.path for f in owners[lease]] == ["/docs/lease.txt"] and owners["0" * 64] == []


# --- the destination writer ------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "folder"])  # SMB: tests/output/test_smb_export.py against a real smbd
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Writer]:
    if request.param == "memory":
        yield MemoryWriter()
        return
    out = FolderWriter(Destination("share", "folder", str(tmp_path)))
    yield out
    out.close()


def test_a_writer_never_replaces_a_file_and_refuses_a_path_for_a_name(writer: Writer):
    assert writer.existing_sha256("answer.md") is None
    assert writer.put("answer.md", b"first") is True
    assert writer.existing_sha256("answer.md") == hashlib.sha256(b"first").hexdigest()
    assert writer.put("answer.md", b"second") is False  # the next free name is the outbox's to choose
    assert writer.existing_sha256("answer.md") == hashlib.sha256(b"first").hexdigest()
    writer.remove("answer.md")
    assert writer.existing_sha256("answer.md") is None
    for unsafe in ("../answer.md", "a/b.md", ".."):
        with pytest.raises(SealroomError, match="unsafe"):
            writer.put(unsafe, b"x")


# --- the generator ---------------------------------------------------------------------------------------
@pytest.fixture(
    params=[
        "fake",
        pytest.param("default model", marks=pytest.mark.slow),
        # team mode: the default model behind llama_cpp.server (tests/team/conftest.py)
        pytest.param("server", marks=pytest.mark.slow),
    ]
)
def generator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Generator]:
    if request.param == "fake":
        yield FakeModel("The lease ends on notice . " * 40)
        return
    if request.param == "server":
        from sealroom.models.remote_llm import ServerGenerator

        served = ServerGenerator(request.getfixturevalue("llm_server"))
        served.warm_up()
        yield served
        served.close()
        return
    from sealroom.core.components import make_generator
    from sealroom.core.runtime.config import Settings

    (tmp_path / "logs").mkdir()
    model, _ = make_generator(tmp_path, Settings())
    model.warm_up()
    yield model
    model.close()


def test_a_generator_streams_text_within_its_budget_and_stops_when_cancelled(generator: Generator):
    counts = generator.count_tokens(["one", "one two three four five six seven"])
    assert len(counts) == 2 and 0 < counts[0] < counts[1]
    prompt = "Write a long story about a lighthouse keeper."
    pieces = list(generator.generate(prompt=prompt, max_tokens=8))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert 0 < generator.count_tokens(["".join(pieces)])[0] <= 12  # a token may split into two on recount
    stream = generator.generate(prompt=prompt, max_tokens=400)
    first = next(stream)
    threading.Thread(target=generator.cancel).start()
    rest = list(stream)
    assert first and len(rest) < 399 and generator.finish_reason in ("cancelled", "stop")
