"""The one place core builds concrete models: the embedder, the model catalogue and the chat model.

Everything else in core sees them through `protocols`; importing `sealroom.models` here,
lazily, keeps core's start-up light and the dependency one-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sealroom.core.protocols import Embedder, Generator
from sealroom.core.runtime.config import Settings


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


def model_catalogue(home: Path, settings: Settings) -> Any:
    from sealroom.models.catalogue import ModelCatalogue

    return ModelCatalogue(home, settings.allowed_model_sha256)


def make_generator(home: Path, settings: Settings) -> tuple[Generator, Any]:
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
