"""Team mode's vector index against a real `chroma run` (issue 29): matter walls inside Chroma's query, and a
server that goes away is a clear error and comes back with its vectors. The contract checks it shares with
the embedded index are in tests/test_protocols.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import numpy as np
import pytest

from sealroom.core.runtime.errors import SealroomError, ServerUnreachable
from sealroom.core.store.remote_vectors import ChromaServerIndex
from tests.team.chroma_server import ChromaServer, free_port

DIM = 32


@pytest.fixture
def index(chroma_server: ChromaServer) -> Iterator[ChromaServerIndex]:
    host, port = chroma_server
    out = ChromaServerIndex(str(host), int(port))
    yield out
    out.close()


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_a_walled_query_never_returns_what_the_readers_groups_may_not_read(index: ChromaServerIndex):
    rng = np.random.default_rng(29)
    a = _unit(rng.normal(size=(60, DIM)))
    b = _unit(rng.normal(size=(60, DIM)))
    a_ids = [f"a-{i}" for i in range(60)]
    b_ids = [f"b-{i}" for i in range(60)]
    index.upsert(a_ids, a, ["sa"] * 60, groups=[["A"]] * 60)
    index.upsert(b_ids, b, ["sb"] * 60, groups=[["B", "C"]] * 60)
    index.upsert(["open-0"], _unit(a[:1] + 0.01), ["so"])  # no groups: only an unwalled query reads it
    assert index.count() == 121

    for q in range(200):  # each query is nearest to one of A's vectors
        target = q % 60
        query = _unit(a[target] + rng.normal(scale=0.05, size=DIM))
        walled = index.query(query, 10, groups=["B"])
        assert len(walled) == 10 and {i for i, _ in walled} <= set(b_ids)
        both = index.query(query, 10, groups=["A", "B"])
        assert both[0][0] == a_ids[target] and {i for i, _ in both} <= set(a_ids) | set(b_ids)
        if q < 20:
            assert index.query(query, 10, groups=["C", "B", "C"]) == walled  # any of the reader's groups
    mixed = index.query(_unit(a[0] + b[0]), 20, groups=["A", "B"])
    assert {i[0] for i, _ in mixed} == {"a", "b"}
    assert "open-0" in [i for i, _ in index.query(a[0], 3)]  # no wall: everything
    assert index.query(a[0], 5, groups=[]) == []  # a reader in no group reads nothing


def test_a_passage_moved_to_another_group_leaves_no_reader_behind(index: ChromaServerIndex):
    v = _unit(np.ones((1, DIM)))
    index.upsert(["p-0"], v, ["s"], ["print-1"], groups=[["A"]])
    assert [i for i, _ in index.query(v[0], 1, groups=["A"])] == ["p-0"]
    index.upsert(["p-0"], v, ["s"], groups=[["B"]])  # Chroma merges metadata: the old group must not stay
    assert index.query(v[0], 1, groups=["A"]) == []
    assert [i for i, _ in index.query(v[0], 1, groups=["B"])] == ["p-0"]
    assert index.fingerprints(["p-0"]) == {}  # a vector written without its text's print has none
    index.upsert(["p-0"], v, ["s"])
    assert index.query(v[0], 1, groups=["B"]) == [] and len(index.query(v[0], 1)) == 1
    with pytest.raises(ValueError, match="groups"):
        index.upsert(["p-0", "p-1"], np.vstack([v, v]), ["s", "s"], groups=[["A"]])


def test_a_server_that_is_not_there_is_a_clear_error_at_once(tmp_path):
    port = free_port()
    index = ChromaServerIndex("127.0.0.1", port)
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match=rf"127\.0\.0\.1:{port}.*chroma run") as caught:
        index.query(np.ones(DIM, dtype=np.float32), 3)
    assert isinstance(caught.value, SealroomError) and time.monotonic() - started < 5
    index.close()


@pytest.mark.slow
def test_a_killed_server_is_a_clear_error_and_after_a_restart_the_vectors_are_there(
    chroma_server: ChromaServer,
):
    index = ChromaServerIndex(chroma_server.host, chroma_server.port)
    rng = np.random.default_rng(7)
    vectors = _unit(rng.normal(size=(150, DIM)))
    ids = [f"k-{i}" for i in range(150)]
    index.upsert(ids, vectors, ["s"] * 150, groups=[["A"] if i % 2 else ["B"] for i in range(150)])
    before = index.query(vectors[3], 5, groups=["A"])

    chroma_server.kill()
    for call in (
        lambda: index.query(vectors[3], 5),
        index.count,
        lambda: index.upsert(ids[:1], vectors[:1], ["s"]),
    ):
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match=f"{chroma_server.host}:{chroma_server.port}"):
            call()
        assert time.monotonic() - started < 5

    chroma_server.start()  # same folder, same port
    assert index.query(vectors[3], 5, groups=["A"]) == before
    assert index.count() == 150 and index.ids() == set(ids)
    index.close()


def test_a_server_that_hangs_is_the_same_clear_error_after_the_timeout(chroma_server: ChromaServer):
    index = ChromaServerIndex(chroma_server.host, chroma_server.port, timeout=1.0)
    index.upsert(["h-0"], np.ones((1, DIM), dtype=np.float32), ["s"])
    assert chroma_server.process is not None
    chroma_server.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match="did not answer"):
            index.count()
        assert time.monotonic() - started < 4
    finally:
        chroma_server.process.send_signal(signal.SIGCONT)
    assert index.count() == 1
    index.close()


def test_the_offline_guard_lets_the_loopback_server_through_and_names_a_blocked_host(
    chroma_server: ChromaServer,
):
    code = textwrap.dedent(
        f"""
        from sealroom.core.runtime import offline
        offline.enforce()
        import numpy as np
        from sealroom.core.runtime.errors import ServerUnreachable
        from sealroom.core.store.remote_vectors import ChromaServerIndex
        index = ChromaServerIndex({chroma_server.host!r}, {chroma_server.port})
        index.upsert(["x-0"], np.ones((1, 4), dtype=np.float32), ["s"], groups=[["A"]])
        print("loopback", index.query(np.ones(4, dtype=np.float32), 1, groups=["A"])[0][0])
        try:
            ChromaServerIndex("192.0.2.1", 8000).count()
        except ServerUnreachable as e:
            print("blocked", e)
        print("attempts", offline.blocked_attempts)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "loopback x-0" in out.stdout
    assert "blocked the team's vector server (Chroma) at 192.0.2.1:8000" in out.stdout
    assert "allowed_hosts" in out.stdout and "('192.0.2.1', 8000)" in out.stdout.split("attempts")[-1]
