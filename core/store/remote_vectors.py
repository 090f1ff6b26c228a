"""Team mode's vector index: passage vectors in Chroma's own server (`chroma run`), behind `VectorIndex`.

The same contract as `vectorstore.VectorStore` (Chroma on disk), over `chromadb.HttpClient`, with telemetry
and tracing off (offline.enforce lets loopback through; a server elsewhere must be an allowed host).

Matter walls: each vector may carry the groups allowed to read it, as one array metadata value
(`groups: ["A", "B"]`). A walled query filters inside Chroma's query (`where`: `$contains` on that array,
`$or` over the reader's groups), so a vector outside the reader's groups is never a candidate: it is not
retrieved and then dropped. A vector stored without groups is read only by unwalled queries (fail closed).
An array rather than one boolean key per group: Chroma's upsert merges metadata, and an array is replaced
whole, so a passage moved from group A to B leaves no `g:A` behind. (`$in` on an array field matches
nothing in chromadb 1.5.9, silently: never use it here.)

A server that does not answer raises `ServerUnreachable` (host:port and what to do) after a short timeout,
never a raw httpx error; the next call tries again, so the index works again once the server is back.
"""

from __future__ import annotations

import contextlib
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
        for start in range(0, len(ids), WRITE_BATCH):
            end = start + WRITE_BATCH
            self._call(
                "upsert",
                ids=list(ids[start:end]),
                embeddings=embeddings[start:end],
                metadatas=metadatas[start:end],
            )

    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        """The text fingerprints stored with those of `ids` that have a vector already."""
        return read_fingerprints(lambda **kw: self._call("get", **kw), ids, READ_BATCH)

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), WRITE_BATCH):
            self._call("delete", ids=list(ids[start : start + WRITE_BATCH]))

    def query(
        self, embedding: np.ndarray, n: int, *, groups: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first. `groups`: the reader's groups; only vectors readable by
        one of them are searched (the filter is Chroma's, before ranking). None: no wall."""
        if n <= 0:
            return []
        where: dict[str, Any] | None = None
        if groups is not None:
            readers = _groups(groups)
            if not readers:
                return []  # a reader in no group reads nothing
            where = wall(readers)
        result = self._call(
            "query", query_embeddings=[embedding], n_results=n, where=where, include=["distances"]
        )
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]

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
