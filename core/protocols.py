"""The seams between the rooms: what crosses them (a file's row, a retrieved passage, a model's entry) and
the components they use without knowing which (embedder, generator, vector index, passage retriever,
audit log). Imports no room."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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


@dataclass(frozen=True)
class Chunk:
    """A passage of a document version, with where it came from."""

    id: str
    sha256: str
    seq: int
    text: str
    page: int | None
    heading: str | None
    start: int
    end: int


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
    origin: str = ""  # the index it came from: "" this computer's, "team" the team's (team mode)

    @classmethod
    def of_chunk(
        cls, chunk: Chunk, path: str, score: float, similarity: float | None = None, keyword: bool = False
    ) -> Hit:
        """The passage `chunk` of the file at `path`, found with this score."""
        return cls(
            chunk.id,
            path,
            chunk.page,
            chunk.heading,
            chunk.text,
            score,
            similarity,
            keyword,
            chunk.start,
            chunk.end,
            chunk.sha256,
            chunk.seq,
        )

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
        if self.origin:
            out["origin"] = self.origin
        if text:
            out["text"] = self.text
        return out


@dataclass
class Passage:
    """A cited passage with the rest of its section around it (what a citation's preview shows)."""

    before: str
    text: str
    after: str
    page: int | None
    lines: tuple[int, int] | None = None  # the file's lines it spans (first, last), for a text file


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
        since: float | None = None,
    ) -> list[Hit]: ...
    def known_words(self, words: list[str]) -> set[str]: ...  # those that some indexed passage holds


class VectorIndex(Protocol):
    """Passage vectors by chunk id (Chroma on disk; a server in team mode).

    `groups` (team mode's matter walls): the reader's groups; only vectors readable by one of them are
    searched, inside the index. None: no wall. An index without walls (the laptop's) refuses anything else."""

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        shas: Sequence[str],
        prints: Sequence[str] | None = None,
    ) -> None: ...  # `shas`: each passage's document; `prints`: a fingerprint of each embedded text
    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def query(
        self, embedding: np.ndarray, n: int, *, groups: Sequence[str] | None = None
    ) -> list[tuple[str, float]]: ...  # (id, similarity), nearest first
    def ids(self) -> set[str]: ...
    def count(self) -> int: ...
    def vacuum(self) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class PassageReads(Protocol):
    """What search reads of the catalog's passages (SQLite with FTS5; PostgreSQL in team mode).

    Every read takes `groups` (team mode's matter walls: the reader's groups, applied inside the store, so
    nothing behind a wall is returned, ranked against or counted). None: no wall. A store without walls
    (the laptop's SQLite) refuses anything else: never an unwalled read where a wall was asked for."""

    def chunks_by_id(
        self, ids: Sequence[str], *, groups: Sequence[str] | None = None
    ) -> dict[str, Chunk]: ...
    def chunks_at(
        self, places: Iterable[tuple[str, int]], *, groups: Sequence[str] | None = None
    ) -> dict[tuple[str, int], Chunk]: ...
    def chunks_of(self, sha256: str, *, groups: Sequence[str] | None = None) -> list[Chunk]: ...  # in order
    # `match`: FTS5 syntax ('"a" OR "b"'); (chunk id, score), best first; `within`: of these contents only
    def keyword_search(
        self,
        match: str,
        limit: int,
        within: Sequence[str] | None = None,
        *,
        groups: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]: ...
    def known_words(
        self, words: list[str], *, groups: Sequence[str] | None = None
    ) -> set[str]: ...  # those some indexed passage holds
    def document_names(
        self, *, groups: Sequence[str] | None = None
    ) -> list[tuple[str, str, str]]: ...  # (sha256, path, first line) of indexed files
    def rare_matches(
        self, terms: Iterable[str], most: int, *, groups: Sequence[str] | None = None
    ) -> set[str]: ...  # ids of a term in ≤ most passages
    def files_for_content(
        self, sha256s: Iterable[str], *, groups: Sequence[str] | None = None
    ) -> dict[str, list[FileRow]]: ...  # indexed files only


class AuditLog(Protocol):
    def record(self, event: str, **data: Any) -> dict[str, Any] | None: ...


class ModelChoice(Protocol):
    """A chat model the user may choose: a catalogue entry."""

    sha256: str
    path: str
    name: str
    size: int
    architecture: str
    context_length: int | None
    chat_template: bool
    default: bool


#: Why an answer was not helpful: each reason says what the answer should have done instead.
REASONS = {
    "wrong": "the answer is wrong",
    "incomplete": "the answer is incomplete",
    "wrong_source": "it cites the wrong source",
    "should_abstain": 'it should have said "not found"',
    "should_answer": "it should have answered",
}
