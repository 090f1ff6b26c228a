"""Keeping the vector index in line with the catalog: the catalog is the truth, Chroma is derived from it.
Deleted passages leave Chroma first, then the catalog; vectors nothing refers to are dropped; passages
without vectors are embedded again from the catalog's text (no document is re-read)."""

from __future__ import annotations

from sealroom.core.ingest.indexer import Progress, embedding_text, fingerprint
from sealroom.core.protocols import Embedder, VectorIndex
from sealroom.core.runtime import logs
from sealroom.core.store.catalog import Catalog

BATCH = 256


def collect_garbage(catalog: Catalog, store: VectorIndex) -> int:
    """Delete chunks no indexed file refers to: from Chroma first, then the catalog."""
    orphans = catalog.orphan_chunk_ids()
    if orphans:
        store.delete(orphans)
        catalog.delete_chunks(orphans)
        store.vacuum()  # a deleted document's vectors and hashes leave the file, not only the index
    return len(orphans)


def heal_vectors(catalog: Catalog, store: VectorIndex, embedder: Embedder) -> None:
    """Make Chroma match the catalog: drop vectors nothing refers to (a crash before the commit), keep
    those of files still pending (a large file resumes from them), and embed what is missing (an index
    deleted or damaged under us), without re-reading any document."""
    if store.count() == catalog.chunk_count():
        return
    known = {c.id for batch in catalog.all_chunks(2000) for c in batch}
    stored = store.ids()
    pending = {row.sha256[:32] for row in catalog.pending(limit=1_000_000)}
    extra = [i for i in stored - known if i.rsplit("-", 1)[0] not in pending]
    if extra:
        store.delete(extra)
    # passages committed before their vectors: the indexer embeds them next, with progress
    missing = known - stored - catalog.unembedded_chunk_ids()
    if missing:
        logs.problem("vector index incomplete", missing=len(missing), of=len(known))
        embed_chunks(catalog, store, embedder, sorted(missing))


def embed_chunks(
    catalog: Catalog,
    store: VectorIndex,
    embedder: Embedder,
    ids: list[str] | None,
    progress: Progress | None = None,
) -> int:
    """Embed and store the catalog's chunks (all, or those with `ids`); how many were written."""
    total = catalog.chunk_count() if ids is None else len(ids)
    done = 0
    batches = (
        catalog.all_chunks(BATCH)
        if ids is None
        else (list(catalog.chunks_by_id(ids[i : i + BATCH]).values()) for i in range(0, len(ids), BATCH))
    )
    for batch in batches:
        texts = [embedding_text(c.heading, c.text) for c in batch]
        vectors = embedder.embed(texts)
        store.upsert(
            [c.id for c in batch], vectors, [c.sha256 for c in batch], [fingerprint(t) for t in texts]
        )
        done += len(batch)
        if progress:
            progress(done, total, None, f"{done:,} of {total:,} passages")
    return done


def rebuild(
    catalog: Catalog, store: VectorIndex, embedder: Embedder, progress: Progress | None = None
) -> int:
    """Fill an empty vector index from the catalog's chunks (no document is re-read); how many."""
    done = embed_chunks(catalog, store, embedder, None, progress)
    catalog.mark_embedded()
    catalog.set_meta("embedding_model", embedder.model_id)
    logs.event("repair", chunks=done)
    return done
