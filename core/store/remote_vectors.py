"""Team mode's vector index: passage vectors in Chroma's own server (`chroma run`), behind `VectorIndex`.

The same contract as `vectorstore.VectorStore` (Chroma on disk), over `chromadb.HttpClient`, with telemetry
and tracing off (offline.enforce lets loopback through; a server elsewhere must be an allowed host).

Matter walls: each vector carries the groups allowed to read it, as one array metadata value in the main
collection (`groups: ["A", "B"]`, replaced whole on upsert), and it is also kept in one collection per group
(`<name>-g-<hash of the group>`). A walled query searches the collections of the reader's groups and merges
them by similarity, so a vector outside the reader's groups is never a candidate, and the cost does not grow
with the index: Chroma's `where` filter on 200,000 vectors took 91 ms for one group and 217 ms for three (one
client), against 3 ms unfiltered. A vector stored without groups is read only by unwalled queries (fail
closed). Upsert, regroup and delete keep the group collections in step with the main one's `groups`.

A server that does not answer raises `ServerUnreachable` (host:port and what to do) after a short timeout,
never a raw httpx error; the next call tries again, so the index works again once the server is back.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from sealroom.core.runtime.errors import ServerUnreachable
from sealroom.core.store.vectorstore import read_fingerprints

# Vectors a request: the server does the work, so VectorStore's reason for 64 (Chroma holding this process's
# GIL) does not hold; 256 of 384 floats is ~1 MB of JSON (10k vectors here: 26 s in 64s, 18 s in 256s)
WRITE_BATCH = 256
READ_BATCH = 5000
GROUPS_KEY = "groups"
CONNECT_TIMEOUT = 2.0  # seconds: an absent server is reported at once
TIMEOUT = 10.0  # seconds for a request once connected (a hung server: the same error, a little later)


def wall(groups: Sequence[str]) -> dict[str, Any]:
    """The `where` filter that admits a vector readable by any of `groups` (non-empty, distinct)."""
    clauses: list[dict[str, Any]] = [{GROUPS_KEY: {"$contains": g}} for g in groups]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _groups(names: Sequence[str]) -> list[str]:
    """`names` without repeats, in order; a group is a non-empty string."""
    if isinstance(names, str):
        raise TypeError("groups is a sequence of group names, not one string")
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a group is a non-empty name, not {name!r}")
        if name not in out:
            out.append(name)
    return out


class ChromaServerIndex:
    """Passage vectors by chunk id in a Chroma server's collection (cosine space)."""

    def __init__(
        self,
        host: str,
        port: int,
        collection: str = "passages",
        *,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.host, self.port, self.name = host, int(port), collection
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._client: Any = None
        self._collection: Any = None
        self._by_group: dict[str, Any] = {}  # the collection of each group's readable passages, by name

    # --- the connection ------------------------------------------------------------------------------------
    def _open(self) -> Any:
        """The collection, connecting first if needed (lazily: the index can be made before the server is up)."""
        if self._collection is None:
            if self._client is None:
                self._client = self._connect()
            self._collection = self._client.get_or_create_collection(
                self.name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        return self._collection

    def _connect(self) -> Any:
        import chromadb
        import httpx
        from chromadb.config import Settings

        settings = Settings(
            anonymized_telemetry=False,
            chroma_otel_collection_endpoint="",
            chroma_otel_granularity="none",
        )
        try:
            # chromadb's first requests (tenant, database) would wait for an absent host without limit
            socket.create_connection((self.host, self.port), timeout=self.connect_timeout).close()
            client = chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
        except (OSError, ValueError) as exc:  # ValueError: chromadb's wording of a refused connection
            if _transport_failure(exc):
                raise self._unreachable(exc) from exc
            raise
        # chromadb's httpx session waits forever (timeout=None); a silent server must fail fast instead
        cast(Any, client)._server._session.timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        return client

    def _call(self, method: str, **arguments: Any) -> Any:
        """The collection's `method(**arguments)`, with a transport failure reported as `ServerUnreachable`,
        and the collection looked up again once if the server no longer knows it (restarted on an empty
        folder, reset by another client)."""
        from chromadb.errors import NotFoundError

        try:
            try:
                return getattr(self._open(), method)(**arguments)
            except NotFoundError:
                self._collection = None
                return getattr(self._open(), method)(**arguments)
        except ServerUnreachable:
            raise
        except Exception as exc:
            if _transport_failure(exc):
                self._collection = None  # looked up again on the next call
                raise self._unreachable(exc) from exc
            raise

    def _group_call(self, group: str, method: str, create: bool, **arguments: Any) -> Any:
        """`method(**arguments)` on the collection of the passages `group` may read (None when it has
        none and `create` is false), with `_call`'s handling of a server gone."""
        from chromadb.errors import NotFoundError

        name = f"{self.name}-g-{hashlib.sha256(group.encode('utf-8')).hexdigest()[:24]}"
        try:
            if self._client is None:
                self._open()
            collection = self._by_group.get(name)
            if collection is None:
                try:
                    collection = (
                        self._client.get_or_create_collection(
                            name, embedding_function=None, metadata={"hnsw:space": "cosine", "group": group}
                        )
                        if create
                        else self._client.get_collection(name, embedding_function=None)
                    )
                except NotFoundError:
                    return None
                self._by_group[name] = collection
            try:
                return getattr(collection, method)(**arguments)
            except NotFoundError:  # dropped by a reset elsewhere
                self._by_group.pop(name, None)
                return None if not create else self._group_call(group, method, create, **arguments)
        except ServerUnreachable:
            raise
        except Exception as exc:
            if _transport_failure(exc):
                self._collection = None
                self._by_group.clear()
                raise self._unreachable(exc) from exc
            raise

    def _readers_of(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """The groups each of `ids` that has a vector is readable by (from the main collection)."""
        out: dict[str, list[str]] = {}
        for start in range(0, len(ids), READ_BATCH):
            page = self._call("get", ids=list(ids[start : start + READ_BATCH]), include=["metadatas"])
            for i, meta in zip(page["ids"], page["metadatas"] or [], strict=False):
                out[i] = list((meta or {}).get(GROUPS_KEY) or [])
        return out

    def _place(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        shas: Sequence[str],
        readers: list[list[str]],
        before: dict[str, list[str]],
    ) -> None:
        """Each vector into the collection of every group that may read it, and out of those that no longer
        may: a walled query then searches whole collections, with no filter to grow with the index."""
        members: dict[str, list[int]] = {}
        leaving: dict[str, list[str]] = {}
        for n, i in enumerate(ids):
            for g in readers[n]:
                members.setdefault(g, []).append(n)
            for g in set(before.get(i, [])) - set(readers[n]):
                leaving.setdefault(g, []).append(i)
        for g, rows in members.items():
            for start in range(0, len(rows), WRITE_BATCH):
                part = rows[start : start + WRITE_BATCH]
                self._group_call(
                    g,
                    "upsert",
                    True,
                    ids=[ids[r] for r in part],
                    embeddings=embeddings[part],
                    metadatas=[{"sha256": shas[r]} for r in part],
                )
        for g, gone in leaving.items():
            for start in range(0, len(gone), WRITE_BATCH):
                self._group_call(g, "delete", False, ids=gone[start : start + WRITE_BATCH])

    def _unreachable(self, exc: BaseException) -> ServerUnreachable:
        if _blocked(exc):
            hint = (
                "Sealroom works offline and this host is not allowed; add it to allowed_hosts in the "
                "settings (IT policy) if the team's vector server runs there"
            )
        else:
            hint = (
                f"start it (chroma run --path <folder> --host {self.host} --port {self.port}) or check the "
                "address in the team settings; nothing was changed, try again once it is running"
            )
        return ServerUnreachable("the team's vector server (Chroma)", self.host, self.port, hint)

    # --- VectorIndex ---------------------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        shas: Sequence[str],
        prints: Sequence[str] | None = None,
        *,
        groups: Sequence[Sequence[str]] | None = None,
    ) -> None:
        """Write vectors. `prints`: a fingerprint of each embedded text; `groups`: per id, the groups allowed
        to read it (None, or an empty list for an id: only unwalled queries read it). Every key is written
        (None deletes it): Chroma merges an upsert's metadata into the old, which must not survive."""
        if len(shas) != len(ids) or len(embeddings) != len(ids):
            raise ValueError("ids, embeddings and shas differ in length")
        if prints is not None and len(prints) != len(ids):
            raise ValueError("ids and prints differ in length")
        if groups is not None and len(groups) != len(ids):
            raise ValueError("ids and groups differ in length")
        metadatas: list[dict[str, Any]] = []
        for i, sha in enumerate(shas):
            readers = _groups(groups[i]) if groups is not None else []
            metadatas.append(
                {
                    "sha256": sha,
                    "text": prints[i] if prints is not None else None,
                    GROUPS_KEY: readers or None,
                }
            )
        before = self._readers_of(ids)
        for start in range(0, len(ids), WRITE_BATCH):
            end = start + WRITE_BATCH
            self._call(
                "upsert",
                ids=list(ids[start:end]),
                embeddings=embeddings[start:end],
                metadatas=metadatas[start:end],
            )
        per_id = [_groups(groups[i]) if groups is not None else [] for i in range(len(ids))]
        self._place(ids, np.asarray(embeddings), shas, per_id, before)

    def regroup(self, ids: Sequence[str], groups: Sequence[str]) -> None:
        """Give these vectors a new list of readers (a folder's groups changed, a copy appeared elsewhere):
        the metadata only, the vectors stay."""
        readers = _groups(groups)
        for start in range(0, len(ids), WRITE_BATCH):
            batch = list(ids[start : start + WRITE_BATCH])
            page = self._call("get", ids=batch, include=["embeddings", "metadatas"])
            found = list(page["ids"])
            if not found:
                continue
            before = {
                i: list((m or {}).get(GROUPS_KEY) or [])
                for i, m in zip(found, page["metadatas"], strict=True)
            }
            shas = [str((m or {}).get("sha256", "")) for m in page["metadatas"]]
            self._call("update", ids=found, metadatas=[{GROUPS_KEY: readers or None} for _ in found])
            vectors = np.asarray(page["embeddings"], dtype=np.float32)
            self._place(found, vectors, shas, [readers] * len(found), before)

    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        """The text fingerprints stored with those of `ids` that have a vector already."""
        return read_fingerprints(lambda **kw: self._call("get", **kw), ids, READ_BATCH)

    def delete(self, ids: Sequence[str]) -> None:
        before = self._readers_of(ids)
        leaving: dict[str, list[str]] = {}
        for i, readers in before.items():
            for g in readers:
                leaving.setdefault(g, []).append(i)
        for g, gone in leaving.items():
            for start in range(0, len(gone), WRITE_BATCH):
                self._group_call(g, "delete", False, ids=gone[start : start + WRITE_BATCH])
        for start in range(0, len(ids), WRITE_BATCH):
            self._call("delete", ids=list(ids[start : start + WRITE_BATCH]))

    def query(
        self, embedding: np.ndarray, n: int, *, groups: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first. `groups`: the reader's groups; only vectors readable by
        one of them are searched (the filter is Chroma's, before ranking). None: no wall."""
        if n <= 0:
            return []
        if groups is None:
            result = self._call("query", query_embeddings=[embedding], n_results=n, include=["distances"])
            return [
                (i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)
            ]
        best: dict[str, float] = {}
        for g in _groups(groups):  # a reader in no group reads nothing
            result = self._group_call(
                g, "query", False, query_embeddings=[embedding], n_results=n, include=["distances"]
            )
            if result is None:
                continue  # no passage this group may read
            for i, d in zip(result["ids"][0], result["distances"][0], strict=True):
                best[i] = max(best.get(i, -2.0), 1.0 - float(d))
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:n]

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            page = self._call("get", include=[], limit=READ_BATCH, offset=offset)["ids"]
            out.update(page)
            if len(page) < READ_BATCH:
                return out
            offset += len(page)

    def count(self) -> int:
        return int(self._call("count"))

    def vacuum(self) -> None:
        """Nothing to do from here: the server owns its files (compacting them is its operator's job)."""

    def reset(self) -> None:
        """Drop and recreate the collection (repair, or a new embedding model)."""
        from chromadb.errors import NotFoundError

        self._call("count")  # connected, or ServerUnreachable
        try:
            for collection in self._client.list_collections():
                name = getattr(collection, "name", collection)
                if str(name).startswith(f"{self.name}-g-"):
                    with contextlib.suppress(NotFoundError):
                        self._client.delete_collection(str(name))
            self._by_group.clear()
            with contextlib.suppress(NotFoundError):
                self._client.delete_collection(self.name)
        except Exception as exc:
            if _transport_failure(exc):
                raise self._unreachable(exc) from exc
            raise
        finally:
            self._collection = None
        self._call("count")  # created again

    def close(self) -> None:
        """Release the client's share of chromadb's per-server system (its HTTP connections)."""
        client, self._client, self._collection = self._client, None, None
        self._by_group.clear()
        close = getattr(client, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):  # closing never fails the caller
                close()


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and len(out) < 20:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _transport_failure(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) is the connection failing rather than a refused request."""
    import httpx

    return any(isinstance(e, httpx.TransportError | OSError) for e in _chain(exc))


def _blocked(exc: BaseException) -> bool:
    """Whether the offline guard refused the connection (core.runtime.offline.NetworkBlocked)."""
    from sealroom.core.runtime.offline import NetworkBlocked

    return any(isinstance(e, NetworkBlocked) for e in _chain(exc))
