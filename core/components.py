"""The one place core builds concrete models (the embedder, the model catalogue, the chat model), and
`Components`: the parts a data folder starts on first use (embedder, vector index, parser pool, model).

Everything else in core sees the models through `protocols`; importing `sealroom.models` here,
lazily, keeps core's start-up light and the dependency one-way.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sealroom.core.answer.pipeline import ModelInfo
from sealroom.core.answer.prompts import shared_start
from sealroom.core.ingest.indexer import text_budget
from sealroom.core.ingest.parse_pool import ParserPool
from sealroom.core.protocols import AuditLog, Embedder, Generator, ModelChoice
from sealroom.core.runtime import logs
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import SealroomError
from sealroom.core.store.catalog import Catalog
from sealroom.core.store.vectorstore import VectorStore

if TYPE_CHECKING:
    from sealroom.models.catalogue import ModelCatalogue


def model_cache() -> Path:
    """Where models derived from shipped files are kept: the user's cache folder (they hold no user
    data and are the same for every data folder)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("sealroom", appauthor=False)) / "models"


def make_embedder(settings: Settings) -> Embedder:
    """The embedder, running the model derived from the shipped file (in `model_cache()`)."""
    from sealroom.models.embedding import OnnxEmbedder

    embedder = OnnxEmbedder(threads=settings.n_threads, cache=model_cache())
    embedder.warm_up()
    return embedder


def model_catalogue(home: Path, settings: Settings) -> ModelCatalogue:
    from sealroom.models.catalogue import ModelCatalogue

    return ModelCatalogue(home, settings.allowed_model_sha256)


def make_generator(home: Path, settings: Settings) -> tuple[Generator, ModelChoice]:
    """The chat model from the settings (not yet loaded) and the catalogue entry of the file it runs.

    The shipped default model runs as its compact copy (models/compact.py) unless the settings say
    otherwise; if that copy cannot be made, the shipped file runs and the log says why."""
    import dataclasses

    from sealroom.models import compact
    from sealroom.models.llm import LlmWorker

    entry = model_catalogue(home, settings).resolve(settings.chat_model)
    if entry.default and entry.sha256 == compact.SOURCE_SHA256 and settings.compact_default_model:
        try:
            path = compact.compact_model_in_child(Path(entry.path), model_cache())
        except Exception as exc:  # the shipped file runs
            from sealroom.core.runtime import logs

            logs.problem("compact default model not made; running the shipped file", reason=str(exc))
        else:
            entry = dataclasses.replace(
                entry, path=str(path), sha256=compact.COMPACT_SHA256, size=path.stat().st_size
            )
    worker = LlmWorker(
        Path(entry.path),
        settings.n_ctx,
        settings.n_threads,
        log_path=home / "logs" / "llm-worker.log",
        sha256=entry.sha256,  # the bytes that load are the bytes the catalogue and the policy allowed
    )
    return worker, entry


class Components:
    """The parts of one data folder, each started once on first use by whichever thread asks first, so
    `status` and `folders` stay fast; `close()` stops those that started."""

    def __init__(self, home: Path, settings: Settings, catalog: Catalog, audit: AuditLog) -> None:
        self.home, self.settings, self.catalog, self.audit = home, settings, catalog, audit
        self.recovered = ""  # what opening found and mended (an embedding model changed), for the user
        self._embedder: Embedder | None = None
        self._store: VectorStore | None = None
        self._pool: ParserPool | None = None
        self._llm: Generator | None = None
        self.model = ModelInfo()  # the chat model loaded (name, sha256)
        self._start_lock = threading.RLock()
        self._llm_lock = threading.Lock()
        self._closing = False  # close() has begun: failures to open now are not the index's fault

    @property
    def embedder(self) -> Embedder:
        with self._start_lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings)
            return self._embedder

    def embedding_model_id(self) -> str:
        """The embedding model this folder's vectors come from (without loading it)."""
        if self._embedder is not None:
            return self._embedder.model_id
        from sealroom.models.embedding import MODEL_ID

        return MODEL_ID

    def use_embedder(self, embedder: Embedder) -> None:
        """Run with this embedder (a benchmark's cache, a test's counter) instead of the shipped one."""
        self._embedder = embedder

    @property
    def store(self) -> VectorStore:
        with self._start_lock:
            if self._store is None:
                with logs.stage("open vector store"):
                    self._store = self._open_store()
                recorded = self.catalog.get_meta("embedding_model")
                if recorded and recorded != self.embedder.model_id:
                    # an upgrade brought another embedding model: its vectors are not comparable. Drop
                    # them; the next index run embeds every passage again from the catalog (no document
                    # is re-read) and search is by keyword meanwhile (status and the window say so).
                    self._store.reset()
                    self.recovered = (
                        f"the embedding model changed ({recorded} → {self.embedder.model_id}): the vector "
                        "index is rebuilt from the catalog at the next index; search is by keyword until then"
                    )
                    logs.event("embedding model changed", previous=recorded, current=self.embedder.model_id)
                    self.audit.record(
                        "model_changed", embedding_model=self.embedder.model_id, previous=recorded
                    )
                self.catalog.set_meta("embedding_model", self.embedder.model_id)
            return self._store

    @property
    def store_opened(self) -> bool:
        return self._store is not None

    @property
    def pool(self) -> ParserPool:
        with self._start_lock:
            if self._pool is None:
                s = self.settings
                self._pool = ParserPool(
                    s.parser_processes, s.parse_timeout_s, s.parse_memory_mb, text_budget(s), ocr=s.ocr
                )
            return self._pool

    def load_model(self) -> tuple[Generator, ModelInfo]:
        """The chat model and what it is, loaded on first use (in its own process): the pipeline's handle."""
        with self._llm_lock:
            if self._llm is None:
                llm, entry = make_generator(self.home, self.settings)
                with logs.stage("load model", model=Path(entry.path).name):
                    llm.warm_up()
                    try:
                        for _ in llm.generate(max_tokens=1, **shared_start(llm.has_chat_template)):
                            pass  # the prompts' shared start, into the model's KV cache
                    except BaseException:
                        llm.close()  # a model that cannot say one token is not kept running
                        raise
                self._llm, self.model = llm, ModelInfo(Path(entry.path).name, entry.sha256)
            return self._llm, self.model

    def llm(self) -> Generator:
        return self.load_model()[0]

    @property
    def model_state(self) -> str:
        """'ready: <file>' once the chat model is loaded, else 'not loaded'."""
        return f"ready: {self.model.name}" if self._llm is not None else "not loaded"

    def unload_model(self) -> None:
        """Close the chat model so the next question loads it with the current settings."""
        with self._llm_lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None

    def cancel_generation(self) -> None:
        if self._llm:
            self._llm.cancel()

    def models(self) -> list[ModelChoice]:
        """The chat models the user may choose (the IT policy's allow-list applied)."""
        return list(model_catalogue(self.home, self.settings).available())

    def add_model(self, path: str) -> ModelChoice:
        return model_catalogue(self.home, self.settings).add(Path(path))

    def _open_store(self) -> VectorStore:
        try:
            return VectorStore(self.home / "chroma", self.embedder)
        except Exception as exc:  # Chroma's own errors vary: sqlite, HNSW, pydantic
            if self._closing or sys.is_finalizing():
                # quitting while the store was still opening: Chroma's imports then fail ("cannot
                # schedule new futures after interpreter shutdown"); the index itself is fine
                raise SealroomError("Sealroom is closing; the vector index was not opened") from exc
            logs.problem("vector index unreadable", error=True, detail=type(exc).__name__)
            raise SealroomError(
                f"the vector index in {self.home / 'chroma'} cannot be read ({type(exc).__name__}); "
                "run `sealroom repair` to rebuild it from the catalog (your documents are not re-read)"
            ) from None

    def new_store(self) -> VectorStore:
        """An empty vector index in place of the current one; one Chroma cannot open, or one built by
        another embedding model, is moved aside (`chroma.damaged-<time>`) and built anew."""
        with self._start_lock:
            self._store = None
            try:
                store = self._open_store()
                store.reset()
            except Exception:
                aside = self.home / f"chroma.damaged-{int(time.time())}"
                if (self.home / "chroma").exists():
                    os.replace(self.home / "chroma", aside)
                    logs.event("vector index moved aside", to=str(aside))
                VectorStore.forget_open_clients()
                store = self._open_store()
            self._store = store
            return store

    def close(self) -> None:
        self._closing = True
        if self._store is not None:
            self._store.close()
        if self._pool:
            self._pool.close()
        if self._llm:
            self._llm.close()
