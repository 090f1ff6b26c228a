"""Chroma on disk as a derived index of chunk embeddings (the text stays in the catalog).

Chroma is always given our own embedding function and telemetry off: its default
embedding function would download a model on first use. Embeddings are passed in
explicitly, so the function is only there to keep Chroma from creating its default.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sealroom.core.protocols import Embedder
from sealroom.core.runtime import logs
from sealroom.core.runtime.errors import UsageError

# Chroma holds the GIL while it writes (~0.15 ms a vector here): small batches keep the window responsive.
WRITE_BATCH = 64
DELETE_OPERATION = 3  # chromadb's Operation.DELETE in `embeddings_queue.operation`

_EF_CLASS: Any = None
_EMBEDDERS: dict[str, Embedder] = {}  # by model id: what Chroma's `build_from_config` hands back


def _embedding_function(embedder: Embedder) -> Any:
    """A registered Chroma EmbeddingFunction that wraps our embedder."""
    global _EF_CLASS
    if _EF_CLASS is None:
        from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
        from chromadb.utils.embedding_functions import register_embedding_function

        class SealroomEmbeddingFunction(EmbeddingFunction[Documents]):
            def __init__(self, embedder: Embedder) -> None:
                self._embedder = embedder

            def __call__(self, input: Documents) -> Embeddings:
                return list(self._embedder.embed(list(input)))

            @staticmethod
            def name() -> str:
                return "sealroom-local"

            def get_config(self) -> dict[str, Any]:
                return {"model_id": self._embedder.model_id}

            @staticmethod
            def build_from_config(config: dict[str, Any]) -> SealroomEmbeddingFunction:
                # Chroma rebuilds the function from the collection's config: the embedder this process
                # handed in for that model (the store never builds a model itself: components does)
                embedder = _EMBEDDERS.get(str(config.get("model_id")))
                if embedder is None:
                    raise ValueError("Sealroom passes its embedder to Chroma explicitly; none is open for it")
                return SealroomEmbeddingFunction(embedder)

            def default_space(self) -> Any:
                return "cosine"

        register_embedding_function(SealroomEmbeddingFunction)
        _EF_CLASS = SealroomEmbeddingFunction
    _EMBEDDERS[embedder.model_id] = embedder
    return _EF_CLASS(embedder)


def read_fingerprints(get: Callable[..., Any], ids: Sequence[str], batch: int = 5000) -> dict[str, str]:
    """The text fingerprints stored with those of `ids` that have a vector, read `batch` ids at a time with
    `get` (a Chroma collection's get, on disk or on a server)."""
    out: dict[str, str] = {}
    for start in range(0, len(ids), batch):
        got = get(ids=list(ids[start : start + batch]), include=["metadatas"])
        for i, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
            if meta and meta.get("text"):
                out[i] = str(meta["text"])
    return out


class VectorStore:
    def __init__(self, path: Path, embedder: Embedder, workspace: str = "default") -> None:
        import chromadb
        from chromadb.config import Settings

        self.embedder = embedder
        self.path = path
        self._client = chromadb.PersistentClient(
            path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=True)
        )
        self.name = f"sealroom-{workspace}"
        self._collection = self._open()

    def _open(self) -> Any:
        return self._client.get_or_create_collection(
            self.name,
            embedding_function=_embedding_function(self.embedder),
            metadata={"hnsw:space": "cosine", "embedding_model": self.embedder.model_id},
        )

    @property
    def model_id(self) -> str | None:
        return (self._collection.metadata or {}).get("embedding_model")

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        shas: Sequence[str],
        prints: Sequence[str] | None = None,
    ) -> None:
        """Write vectors; `prints` (a fingerprint of each embedded text) lets a resumed file skip them."""
        for start in range(0, len(ids), WRITE_BATCH):
            end = start + WRITE_BATCH
            metadatas: list[Any] = [{"sha256": s} for s in shas[start:end]]
            if prints is not None:
                for meta, fingerprint in zip(metadatas, prints[start:end], strict=True):
                    meta["text"] = fingerprint
            self._collection.upsert(
                ids=list(ids[start:end]), embeddings=embeddings[start:end], metadatas=metadatas
            )

    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        """The text fingerprints stored with those of `ids` that have a vector already."""
        return read_fingerprints(self._collection.get, ids)

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), WRITE_BATCH):
            self._collection.delete(ids=list(ids[start : start + WRITE_BATCH]))
        self._forget_queued(ids)

    def _forget_queued(self, ids: Sequence[str]) -> None:
        """Drop the queued writes of deleted vectors from Chroma's write-ahead log (`embeddings_queue`).

        chromadb 1.5.9 never trims it (chroma-core/chroma#7659): a deleted document's vectors and content
        sha256 would stay on disk. Only writes that a later delete of the same id cancels are removed, so
        replaying the log after a crash ends with the same index; the delete records (ids only) stay. Pages
        are overwritten (secure_delete)."""
        if not ids:
            return
        topic = f"%/{self._collection.id}"
        with self._own_sql("deleted vectors left in Chroma's log") as db:
            db.execute("PRAGMA secure_delete=ON")
            with db:
                for start in range(0, len(ids), 500):
                    part = list(ids[start : start + 500])
                    marks = ",".join("?" * len(part))
                    db.execute(
                        f"DELETE FROM embeddings_queue WHERE topic LIKE ? AND id IN ({marks}) "
                        "AND operation != ? AND seq_id < (SELECT MAX(d.seq_id) FROM embeddings_queue d "
                        "WHERE d.id = embeddings_queue.id AND d.topic = embeddings_queue.topic "
                        "AND d.operation = ?)",
                        [topic, *part, DELETE_OPERATION, DELETE_OPERATION],
                    )

    def vacuum(self) -> None:
        """Rewrite Chroma's SQLite file so the pages its deletes freed (they keep the deleted rows' bytes:
        Chroma does not use secure_delete) are gone. Costs about a second per 100 MB; run after deletions."""
        with self._own_sql("Chroma's file not compacted after a deletion") as db:
            db.execute("VACUUM")

    @contextlib.contextmanager
    def _own_sql(self, failure: str) -> Iterator[sqlite3.Connection]:
        """Chroma's SQLite file, opened beside Chroma for what its API cannot do. A failure is logged as
        `failure` and never fails the deletion it follows."""
        try:
            with contextlib.closing(sqlite3.connect(self.path / "chroma.sqlite3", timeout=30)) as db:
                yield db
        except sqlite3.Error as exc:
            logs.problem(failure, error=True, detail=str(exc))

    def query(
        self, embedding: np.ndarray, n: int, *, groups: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first. No matter walls here: `groups` must be None."""
        if groups is not None:
            raise UsageError(
                "this vector index has no matter walls (the laptop's); a walled read needs team mode"
            )
        total = self.count()
        if total == 0:
            return []
        result = self._collection.query(
            query_embeddings=[embedding], n_results=min(n, total), include=["distances"]
        )
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            page = self._collection.get(include=[], limit=5000, offset=offset)["ids"]
            out.update(page)
            if len(page) < 5000:
                return out
            offset += len(page)

    def export(self, batch: int = 1000) -> Iterator[tuple[list[str], np.ndarray, list[str], list[str]]]:
        """Every vector, `batch` at a time: (ids, embeddings, shas, prints), to copy the index elsewhere
        (a team server's); a vector stored without a fingerprint has '' for it."""
        offset = 0
        while True:
            page = self._collection.get(include=["embeddings", "metadatas"], limit=batch, offset=offset)
            ids = list(page["ids"])
            if ids:
                metas = [m or {} for m in page["metadatas"] or [{}] * len(ids)]
                yield (
                    ids,
                    np.asarray(page["embeddings"], dtype=np.float32),
                    [str(m.get("sha256", "")) for m in metas],
                    [str(m.get("text") or "") for m in metas],
                )
            if len(ids) < batch:
                return
            offset += len(ids)

    def vectors(self, ids: Sequence[str]) -> dict[str, tuple[np.ndarray, str]]:
        """The stored vector and text fingerprint of those of `ids` that have one (to copy them elsewhere)."""
        out: dict[str, tuple[np.ndarray, str]] = {}
        for start in range(0, len(ids), 5000):
            page = self._collection.get(
                ids=list(ids[start : start + 5000]), include=["embeddings", "metadatas"]
            )
            metas = page["metadatas"] or [{}] * len(page["ids"])
            for i, vector, meta in zip(page["ids"], page["embeddings"], metas, strict=True):
                out[i] = (np.asarray(vector, dtype=np.float32), str((meta or {}).get("text") or ""))
        return out

    def count(self) -> int:
        return int(self._collection.count())

    def close(self) -> None:
        """Release Chroma's process-wide system for this path (its database connections). Left open, the
        next store on the same path in this process reused it: after the index was deleted under it, a
        pooled connection opened the new empty file ("no such table: collections")."""
        close = getattr(self._client, "close", None)  # ClientAPI's type does not declare it
        if close is not None:
            with contextlib.suppress(Exception):  # closing never fails the caller
                close()

    @staticmethod
    def forget_open_clients() -> None:
        """Chroma keeps one client per path for the process; after moving a damaged index aside, drop it."""
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()

    def reset(self) -> None:
        """Drop and recreate the collection (repair, or a new embedding model)."""
        self._client.delete_collection(self.name)
        self._collection = self._open()
