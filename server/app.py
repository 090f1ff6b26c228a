"""The Sealroom service (issue 29): search and ask over the team index for the firm's laptops, behind
per-user tokens, with matter walls applied inside the engines.

A Starlette app, stateless between requests (tokens, passages and vectors live in PostgreSQL and Chroma), so
IT runs as many replicas as it needs behind its load balancer; uvicorn serves it over TLS with IT's
certificate (`sealroom-server start`).

    GET  /health      each engine's state; 200 when search works (keyword only still works), else 503
    GET  /metrics     Prometheus: requests, latency, errors, passages, vector search unavailable
    POST /v1/search   {"query", "k", "types", "since", "context"} → {"hits", "notice"}
    POST /v1/words    {"words"} → {"known"}: those some passage the reader may read holds
    POST /v1/passage  {"sha256", "seq", "start", "end"} → a cited passage with its section around it
    POST /v1/ask      {"question", "context", "generate"} → NDJSON: evidence, pieces, then the answer

A request without a valid token is refused (401) and logged. Every read is walled by the reader's groups
(`Retriever(groups=...)`): nothing behind a wall is retrieved, ranked against, counted or quoted. An
answer is evidence first, exactly as on the laptop; the chat model behind llama.cpp's server only phrases
it, and its sentences are verified here against the evidence before they are sent.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sealroom.core.answer.pipeline import AnswerPipeline, ModelInfo
from sealroom.core.answer.retriever import Retriever
from sealroom.core.protocols import Embedder, Generator
from sealroom.core.runtime import logs
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import (
    ModelError,
    SealroomError,
    ServerBusy,
    ServerUnreachable,
    UsageError,
)
from sealroom.core.store.catalog import chunk_id
from sealroom.core.store.passages import passage
from sealroom.core.store.postgres import PostgresPassages
from sealroom.core.store.remote_vectors import ChromaServerIndex
from sealroom.server.audit import TeamAudit
from sealroom.server.config import ServerConfig
from sealroom.server.tokens import Reader, Tokens

MAX_QUERY_CHARS = 2000
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sealroom_requests",
            "Requests by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "sealroom_request_seconds",
            "Time to answer, by endpoint",
            ["endpoint"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.evidence = Histogram(
            "sealroom_evidence_seconds",
            "Time from an ask to its evidence",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.keyword_only = Counter(
            "sealroom_keyword_only",
            "Searches answered by keyword only (vector server unreachable)",
            registry=self.registry,
        )
        self.passages = Gauge("sealroom_passages", "Passages in the team index", registry=self.registry)
        self.up = Gauge(
            "sealroom_engine_up", "Whether each engine answers", ["engine"], registry=self.registry
        )


class Service:
    """The engines one service process reads, opened once; a request makes its own walled retriever."""

    def __init__(self, config: ServerConfig, embedder: Embedder | None = None) -> None:
        self.config = config
        self.pg = PostgresPassages(config.postgres)
        self.chroma = ChromaServerIndex(*config.chroma_address)
        if embedder is None:
            from sealroom.core.components import make_embedder
            from sealroom.models.embedding import RememberingEmbedder

            # a question is embedded for its search and again for its ask, and the sentences of the
            # passages many read recur: each embedded once (exact; see RememberingEmbedder)
            embedder = RememberingEmbedder(make_embedder(Settings()))
        self.embedder = embedder
        self.tokens = Tokens(self.pg.query)
        self.audit = TeamAudit(self.pg.query)
        self.metrics = Metrics()
        self.settings = Settings()

    def retriever(self, reader: Reader) -> Retriever:
        return Retriever(self.pg, self.chroma, self.embedder, groups=reader.groups)

    def generator(self) -> tuple[Generator, ModelInfo]:
        if not self.config.llm:
            raise ModelError(
                "the team service has no chat model (llm in its configuration): the quotes are the answer"
            )
        from sealroom.models.remote_llm import ServerGenerator

        llm = ServerGenerator(self.config.llm, n_ctx=self.config.llm_context)
        return llm, ModelInfo(f"team model at {self.config.llm}", "")

    def no_generator(self) -> tuple[Generator, ModelInfo]:
        raise ModelError("the chat model was not asked (evidence only)")

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            out["passages"] = int(self.pg.query("SELECT count(*) FROM chunks")[0][0])
            out["files"] = {
                r[0]: int(r[1]) for r in self.pg.query("SELECT status, count(*) FROM files GROUP BY 1")
            }
            out["postgres"] = "ok"
            self.metrics.passages.set(out["passages"])
        except SealroomError as exc:
            out["postgres"] = str(exc)
        try:
            out["vectors"] = self.chroma.count()
            out["chroma"] = "ok"
        except SealroomError as exc:
            out["chroma"] = str(exc)
        if self.config.llm:
            try:
                from sealroom.models.remote_llm import ServerGenerator

                ServerGenerator(self.config.llm, connect_timeout=1.0, timeout=3.0).warm_up()
                out["llm"] = "ok"
            except SealroomError as exc:
                out["llm"] = str(exc)
        for engine in ("postgres", "chroma", "llm"):
            if engine in out:
                self.metrics.up.labels(engine).set(1 if out[engine] == "ok" else 0)
        out["status"] = (
            "ok"
            if all(out.get(e, "ok") == "ok" for e in ("postgres", "chroma", "llm"))
            else "degraded"
            if out["postgres"] == "ok"
            else "down"
        )
        return out


class JSONResponse(_StarletteJSON):
    """JSON with non-ASCII characters escaped: a file name that is not UTF-8 holds surrogates, which
    cannot be encoded as UTF-8 but travel as \\udcXX escapes, which the client reads back exactly."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _busy(message: str) -> JSONResponse:
    """Every catalog connection in use: 503 with `busy`, so the client says "busy", not "unreachable"."""
    return JSONResponse({"error": message, "busy": True}, status_code=503, headers={"Retry-After": "5"})


def create_app(service: Service) -> Starlette:
    metrics = service.metrics

    def timed(endpoint: str, handler: Callable[[Request, Reader], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            token = request.headers.get("authorization", "")
            client = request.client.host if request.client else ""
            reader = None
            try:
                if token.lower().startswith("bearer "):
                    reader = await run_in_threadpool(service.tokens.reader, token[7:].strip())
                if reader is None:
                    logs.event("team request refused", endpoint=endpoint, reason="no valid token")
                    refused = "no token"
                    if token:
                        refused = await run_in_threadpool(service.tokens.refused_as, token[7:].strip())
                    await run_in_threadpool(
                        service.audit.record, refused, f"{endpoint}_refused", 401, "", (), client
                    )
                    response: Response = _error(
                        401, "no valid team token: ask IT for one (sealroom team login)"
                    )
                else:
                    request.state.audit = (reader.user, client)
                    response = await handler(request, reader)
            except ServerUnreachable as exc:
                response = _error(503, str(exc))
            except ServerBusy as exc:
                response = _busy(str(exc))
            except UsageError as exc:
                response = _error(400, str(exc))
            except SealroomError as exc:  # the model, say: the message says what to do
                response = _error(503, str(exc))
            except (ValueError, KeyError, TypeError) as exc:
                response = _error(400, f"a malformed request: {exc}")
            metrics.requests.labels(endpoint, str(response.status_code)).inc()
            metrics.seconds.labels(endpoint).observe(time.perf_counter() - started)
            if reader is not None:
                logs.event("team request", endpoint=endpoint, user=reader.user, status=response.status_code)
            return response

        return run

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise UsageError("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise UsageError("the request body is not a JSON object")
        return data

    def _text(data: dict[str, Any], key: str) -> str:
        value = data.get(key, "")
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{key} is empty")
        if len(value) > MAX_QUERY_CHARS:
            raise UsageError(f"{key} is too long ({len(value)} characters; at most {MAX_QUERY_CHARS})")
        return value

    async def search(request: Request, reader: Reader) -> Response:
        data = await body(request)
        query = _text(data, "query")
        k = int(data.get("k") or service.settings.search_k)
        types = data.get("types") or None
        since = float(data["since"]) if data.get("since") is not None else None
        context = str(data.get("context") or "")
        retriever = service.retriever(reader)
        hits = await run_in_threadpool(retriever.search, query, k, None, types, context, since)
        if retriever.notice:
            metrics.keyword_only.inc()
        await run_in_threadpool(
            service.audit.record,
            reader.user,
            "search",
            200,
            query,
            [h.chunk_id for h in hits],
            request.state.audit[1],
        )
        return JSONResponse(
            {
                "hits": [h.to_dict() | {"similarity": h.similarity, "keyword": h.keyword} for h in hits],
                "notice": retriever.notice,
                # similarities compare with the laptop's only when both embed with the same model
                "embedding_model": service.embedder.model_id,
            }
        )

    async def words(request: Request, reader: Reader) -> Response:
        data = await body(request)
        asked = [str(w) for w in data.get("words", [])][:200]
        known = await run_in_threadpool(service.retriever(reader).known_words, asked)
        await run_in_threadpool(
            service.audit.record, reader.user, "words", 200, " ".join(asked), (), request.state.audit[1]
        )
        return JSONResponse({"known": sorted(known)})

    async def passage_of(request: Request, reader: Reader) -> Response:
        """A cited passage with the rest of its section around it (the laptop's preview), read behind the
        reader's wall: a passage they may not read is "no longer in the index", as one deleted."""
        data = await body(request)
        sha256, seq = str(data["sha256"]), int(data["seq"])
        start, end = int(data["start"]), int(data["end"])
        found = await run_in_threadpool(passage, service.pg, sha256, seq, start, end, reader.groups)
        await run_in_threadpool(
            service.audit.record,
            reader.user,
            "passage",
            200,
            "",
            [chunk_id(sha256, seq)],
            request.state.audit[1],
        )
        return JSONResponse(
            {
                "before": found.before,
                "text": found.text,
                "after": found.after,
                "page": found.page,
                "lines": list(found.lines) if found.lines else None,
            }
        )

    async def ask(request: Request, reader: Reader) -> Response:
        data = await body(request)
        question = _text(data, "question")
        context = str(data.get("context") or "")
        generate = bool(data.get("generate", True))
        started = time.perf_counter()
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        pipeline = AnswerPipeline(
            service.retriever(reader),
            service.embedder,
            service.generator if generate else service.no_generator,
            k=service.settings.search_k,
            min_similarity=service.settings.min_similarity,
            min_evidence=service.settings.min_evidence,
            max_answer_tokens=service.settings.max_answer_tokens,
        )
        first = [True]

        def on_text(piece: str) -> None:
            if first[0]:
                first[0] = False
                metrics.evidence.observe(time.perf_counter() - started)
                events.put({"event": "evidence", "text": piece})
            else:
                events.put({"event": "piece", "text": piece})

        def run() -> None:
            try:
                answer = pipeline.run(question, [context] if context else [], on_text=on_text)
                answer.indexes = ["team"]
                service.audit.record(
                    reader.user,
                    "ask",
                    200,
                    question,
                    [h.chunk_id for h in answer.sources],
                    request.state.audit[1],
                )
                events.put(
                    {
                        "event": "answer",
                        "answer": answer.to_dict(),
                        "sources": [
                            h.to_dict() | {"similarity": h.similarity, "keyword": h.keyword}
                            for h in answer.sources
                        ],
                        "evidence": [e.to_dict() for e in answer.evidence],
                    }
                )
            except SealroomError as exc:
                events.put({"event": "error", "message": str(exc)})
            finally:
                events.put(None)

        threading.Thread(target=run, name="team-ask", daemon=True).start()

        def stream() -> Iterator[bytes]:
            while (event := events.get()) is not None:
                yield (json.dumps(event) + "\n").encode("utf-8")

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    async def health(request: Request) -> Response:
        report = await run_in_threadpool(service.health)
        return JSONResponse(report, status_code=200 if report["status"] != "down" else 503)

    async def prometheus(request: Request) -> Response:
        await run_in_threadpool(service.health)  # the engines' gauges, fresh at each scrape
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/metrics", prometheus),
            Route("/v1/search", timed("search", search), methods=["POST"]),
            Route("/v1/words", timed("words", words), methods=["POST"]),
            Route("/v1/passage", timed("passage", passage_of), methods=["POST"]),
            Route("/v1/ask", timed("ask", ask), methods=["POST"]),
        ]
    )


def from_environment() -> Starlette:
    """The app for uvicorn's workers (`sealroom-server start --workers N`): the configuration is named by
    SEALROOM_SERVER_CONFIG."""
    from sealroom.server import config

    return create_app(Service(config.load()))
