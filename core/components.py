"""The one place core builds concrete models: the embedder, the model catalogue and the chat model.

Everything else in core sees them through `protocols`; importing `sealroom.models` here,
lazily, keeps core's start-up light and the dependency one-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import Settings
from .protocols import Embedder, Generator


def make_embedder(settings: Settings) -> Embedder:
    """The embedder, running the model derived from the shipped file (kept in the user's cache folder:
    it holds no user data and is the same for every data folder)."""
    import platformdirs

    from sealroom.models.embedding import OnnxEmbedder

    cache = Path(platformdirs.user_cache_dir("sealroom", appauthor=False)) / "models"
    embedder = OnnxEmbedder(threads=settings.n_threads, cache=cache)
    embedder.warm_up()
    return embedder


def model_catalogue(home: Path, settings: Settings) -> Any:
    from sealroom.models.catalogue import ModelCatalogue

    return ModelCatalogue(home, settings.allowed_model_sha256)


def make_generator(home: Path, settings: Settings) -> tuple[Generator, Any]:
    """The chat model from the settings (not yet loaded) and its catalogue entry."""
    from sealroom.models.llm import LlmWorker

    entry = model_catalogue(home, settings).resolve(settings.chat_model)
    worker = LlmWorker(
        Path(entry.path), settings.n_ctx, settings.n_threads, log_path=home / "logs" / "llm-worker.log"
    )
    return worker, entry
