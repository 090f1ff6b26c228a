"""The small seams between the engine (core) and the models package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    model_id: str
    dimension: int

    def warm_up(self) -> None: ...
    def token_spans(self, text: str) -> list[tuple[int, int]]: ...
    def embed(self, texts: list[str]) -> np.ndarray: ...


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
    ) -> Iterator[str]: ...
    def cancel(self) -> None: ...
