"""The fakes for unit tests of logic, in one place: a retriever over three passages, an embedder that
knows nothing, a model that says what it is told, a vector index and a destination in memory, a destination
writer that refuses. Each keeps its protocol's contract (tests/test_protocols.py runs the same checks on it
and on the real component). Everything else in the tests is real (files, SQLite, Chroma, models, smbd, the
keyring)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from sealroom.core.answer.text import content_terms
from sealroom.core.output.destinations import Refused
from sealroom.core.protocols import Hit
from sealroom.core.runtime.errors import SealroomError, UsageError

PASSAGES = [
    (
        "/docs/policy.pdf",
        2,
        "Backups are kept for two years. Audit logs are kept for ten years after the contract ends.",
    ),
    (
        "/docs/referral.docx",
        None,
        "Referral for patient PX-20417, signed by Dr. Miriam Okafor on 3 May 2024.",
    ),
    ("/docs/canteen.txt", None, "The canteen opens at noon on weekdays."),
]


class FakeRetriever:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(
        self, query: str, k: int = 6, folders=None, types=None, context: str = "", since=None
    ) -> list[Hit]:
        query = f"{context} {query}".strip()
        self.queries.append(query)
        terms = content_terms(query)
        scored = [(len(terms & content_terms(t)), i) for i, (_, _, t) in enumerate(PASSAGES)]
        out = []
        for score, i in sorted(scored, reverse=True):
            if score:
                path, page, text = PASSAGES[i]
                out.append(Hit(f"c{i}", path, page, None, text, 1.0, 0.6, True, 0, len(text), f"{i}" * 64, 0))
        return out[:k]

    def known_words(self, words: list[str]) -> set[str]:
        every = set().union(*(content_terms(t) for _, _, t in PASSAGES))
        return {w for w in words if content_terms(w) & every}


class FakeEmbedder:
    model_id = "fake"
    dimension = 8

    def warm_up(self) -> None: ...
    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return []

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32)


class FakeModel:
    n_ctx = 2048
    has_chat_template = False
    finish_reason = "stop"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[str] = []
        self.calls = 0
        self._stop = threading.Event()

    def warm_up(self) -> None: ...
    def count_tokens(self, texts: list[str]) -> list[int]:
        return [(len(t) + 3) // 4 for t in texts]

    def generate(self, prompt=None, messages=None, max_tokens=256, stop=None, grammar=None) -> Iterator[str]:
        self.calls += 1
        self.prompts.append(prompt or "")
        self._stop.clear()
        for word in self.reply.split(" ")[:max_tokens]:
            if self._stop.is_set():
                self.finish_reason = "cancelled"
                return
            yield word + " "

    def cancel(self) -> None:
        self._stop.set()

    def close(self) -> None: ...


class FakeVectors:
    """A vector index in memory (cosine similarity, as the Chroma collection is set up)."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        self.meta: dict[str, dict[str, str]] = {}

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, shas: Sequence[str], prints=None) -> None:
        for n, i in enumerate(ids):
            self.vectors[i] = np.asarray(embeddings[n], dtype=np.float32)
            self.meta[i] = {"sha256": shas[n]} | ({"text": prints[n]} if prints is not None else {})

    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        return {i: self.meta[i]["text"] for i in ids if "text" in self.meta.get(i, {})}

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.vectors.pop(i, None)
            self.meta.pop(i, None)

    def query(
        self, embedding: np.ndarray, n: int, *, groups: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        if groups is not None:  # as the laptop's index: no matter walls
            raise UsageError("this vector index has no matter walls")

        def similarity(v: np.ndarray) -> float:
            return float(v @ embedding / (np.linalg.norm(v) * np.linalg.norm(embedding) or 1.0))

        return sorted(((i, similarity(v)) for i, v in self.vectors.items()), key=lambda p: -p[1])[:n]

    def ids(self) -> set[str]:
        return set(self.vectors)

    def count(self) -> int:
        return len(self.vectors)

    def vacuum(self) -> None: ...

    def reset(self) -> None:
        self.vectors.clear()
        self.meta.clear()

    def close(self) -> None: ...


class MemoryWriter:
    """A destination in memory: what an export would write, by name."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def existing_sha256(self, name: str) -> str | None:
        data = self.files.get(name)
        return hashlib.sha256(data).hexdigest() if data is not None else None

    def put(self, name: str, data: bytes) -> bool:
        if not name or name in (".", "..") or any(c in name for c in "/\\:\0"):
            raise SealroomError(f"unsafe export file name refused: {name!r}")
        if name in self.files:
            return False
        self.files[name] = data
        return True

    def remove(self, name: str) -> None:
        self.files.pop(name, None)

    def close(self) -> None: ...


class RefusingWriter:
    """A destination that refuses every login (a wrong password); counts how often it was tried."""

    def __init__(self) -> None:
        self.tries: list[str] = []

    def existing_sha256(self, name: str) -> str | None:
        self.tries.append(name)
        raise Refused("//files/legal: wrong user name or password")

    def put(self, name: str, data: bytes) -> bool:
        raise AssertionError("never reached: the login failed")

    def remove(self, name: str) -> None: ...

    def close(self) -> None: ...


TEAM_HIT = {
    "chunk_id": "t1",
    "path": "/share/matter-a/lease.pdf",
    "page": 3,
    "text": "The lease ends on 30 June 2031 unless renewed in writing.",
    "score": 0.9,
    "sha256": "a" * 64,
    "similarity": 0.9,
    "seq": 4,
    "start": 120,
    "end": 178,
}
TEAM_PASSAGE = {
    "before": "ARTICLE 7 — TERM. ",
    "text": TEAM_HIT["text"],
    "after": " Notice of renewal is given six months before.",
    "page": 3,
    "lines": None,
}


class FakeTeamService:
    """The team service's replies over plain HTTP on loopback, for unit tests of the laptop's side: each
    path answers from `routes`, or everything with `reply` when set; `requests` counts them. The real
    service, with its servers, is tested in tests/team/test_service.py."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, Any]]] = {
            "/v1/search": (200, {"hits": [TEAM_HIT], "notice": "", "embedding_model": "fake"}),
            "/v1/passage": (200, TEAM_PASSAGE),
        }
        self.reply: tuple[int, dict[str, Any]] | None = None
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                status, body = outer.reply or outer.routes.get(self.path, (404, {"error": "no such path"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
