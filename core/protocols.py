"""The seams between the rooms: what crosses them (a file's row, a retrieved passage) and the components
they use without knowing which (embedder, generator, passage retriever). Imports no room."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True)
class FileRow:
    id: int
    folder_id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str
    reason: str | None
    pages: int | None


@dataclass
class Hit:
    chunk_id: str
    path: str
    page: int | None
    heading: str | None
    text: str
    score: float
    similarity: float | None
    keyword: bool
    start: int
    end: int
    sha256: str
    seq: int
    last_seq: int | None = None  # the last chunk a merged passage covers (None: just `seq`)

    @property
    def end_seq(self) -> int:
        return self.seq if self.last_seq is None else self.last_seq

    def to_dict(self, text: bool = True) -> dict[str, Any]:
        """The passage as the command line, exports and the window hand it on (`text`: with its words)."""
        out: dict[str, Any] = {
            "chunk_id": self.chunk_id,
            "path": self.path,
            "page": self.page,
            "heading": self.heading,
            "score": round(self.score, 6),
            "sha256": self.sha256,
            "seq": self.seq,
            "start": self.start,
            "end": self.end,
        }
        if text:
            out["text"] = self.text
        return out


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
