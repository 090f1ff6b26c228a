"""Traces of each ask, stage by stage, through OpenTelemetry's SDK.

Spans go to `traces.jsonl` in the data folder (one JSON object per span, rotated at `MAX_BYTES`), never
over the network: team mode can later add an OTLP exporter to the same provider. Sealroom's provider is
its own (not the process-wide global one), so a library that uses OpenTelemetry sees nothing of it.
A span holds what its stage chose and dropped (chunk ids, counts, scores), not the question's words.

`setup(home, enabled)` once; `ask()` opens the root span of one question; `stage()` records a finished
stage under it from the times it already measured (so the pipeline's code keeps its shape).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace

MAX_BYTES = 8 * 1024 * 1024
FILE = "traces.jsonl"

_tracer: trace.Tracer = trace.NoOpTracer()
_provider: Any = None


class JsonLinesExporter:
    """An OpenTelemetry span exporter writing one JSON line per span to a local file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(json.dumps(_span_dict(s), separators=(",", ":")) + "\n" for s in spans)
        try:
            with self._lock:
                if self.path.exists() and self.path.stat().st_size > MAX_BYTES:
                    os.replace(self.path, self.path.with_name(FILE + ".1"))
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as out:
                    out.write(lines)
        except OSError:
            return SpanExportResult.FAILURE  # a full disk loses a trace, never an answer
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _span_dict(span: Any) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": dict(span.attributes or {}),
    }


def setup(home: Path, enabled: bool) -> None:
    """Trace into `home`/traces.jsonl, or (disabled) not at all: a no-op tracer costs nothing."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None
    if not enabled:
        _tracer = trace.NoOpTracer()
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from sealroom.core.runtime.paths import sealroom_version

    _provider = TracerProvider(
        resource=Resource.create({"service.name": "sealroom", "service.version": sealroom_version()})
    )
    _provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(home / FILE)))  # type: ignore[arg-type]
    _tracer = _provider.get_tracer("sealroom")


@contextlib.contextmanager
def ask(**attributes: Any) -> Iterator[tuple[Any, str]]:
    """The root span of one question and its trace id (hex; '' when tracing is off)."""
    with _tracer.start_as_current_span("ask", attributes=_clean(attributes)) as span:
        ctx = span.get_span_context()
        yield span, format(ctx.trace_id, "032x") if ctx.is_valid else ""


def stage(name: str, start_ns: int, end_ns: int | None = None, **attributes: Any) -> None:
    """A finished stage of the current ask: `name` from `start_ns` to `end_ns` (now), with what it chose."""
    span = _tracer.start_span(name, start_time=start_ns, attributes=_clean(attributes))
    span.end(end_time=end_ns or time.time_ns())


def annotate(span: Any, **attributes: Any) -> None:
    for key, value in _clean(attributes).items():
        span.set_attribute(key, value)


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float and lists of one of them; None is left out."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = [v if isinstance(v, str | bool | int | float) else str(v) for v in value]
        elif not isinstance(value, str | bool | int | float):
            value = str(value)
        out[key] = value
    return out


def read(home: Path, trace_id: str) -> list[dict[str, Any]]:
    """The spans of one trace, in the order they started (the root first)."""
    if not trace_id:
        return []
    spans = []
    for path in (home / (FILE + ".1"), home / FILE):
        try:
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    if trace_id in line:
                        with contextlib.suppress(ValueError):
                            spans.append(json.loads(line))
        except OSError:
            continue
    return sorted(
        (s for s in spans if s.get("trace_id") == trace_id),
        key=lambda s: (s["parent_id"] is not None, s["start_ns"]),
    )
