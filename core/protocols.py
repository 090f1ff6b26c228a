"""The small seams between the engine (core), the models package and the answer pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .retriever import Hit


class Embedder(Protocol):
    model_id: str
    dimension: int

    def warm_up(self) -> None: ...
    def token_spans(self, text: str) -> list[tuple[int, int]]: ...
    def embed(self, texts: list[str]) -> np.ndarray: ...
    def release_memory(self) -> None: ...  # after a large batch of work: give back what it held


class Generator(Protocol):
    n_ctx: int
    has_chat_template: bool
    finish_reason: str

    def warm_up(self) -> None: ...
    def count_tokens(self, texts: list[str]) -> list[int]: ...
    def generate(
        self,
        prompt: str | None = None,
        messages: list[dict[str, str]] | None = None,
        max_tokens: int = 256,
        stop: list[str] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...


class PassageRetriever(Protocol):
    def search(
        self,
        query: str,
        k: int = 6,
        folders: list[str] | None = None,
        types: list[str] | None = None,
        context: str = "",
    ) -> list[Hit]: ...
    def known_words(self, words: list[str]) -> set[str]: ...  # those that some indexed passage holds
