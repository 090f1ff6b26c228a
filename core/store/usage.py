"""How Sealroom was used, read from what the catalog keeps already (answers with their records, files with
their statuses), as counts and figures without any words of a question, an answer or a file name: what
local monitoring charts and what IT may receive (`core/feedback/metrics.py`)."""

from __future__ import annotations

import re
import statistics
from typing import Any

from sealroom.core.store.catalog import Catalog

#: Why files could not be indexed, as a fixed set of kinds (a reason's own words may name the file).
FAILURE_KINDS = (
    ("encrypted", re.compile(r"encrypt|password", re.I)),
    ("unsupported", re.compile(r"unsupported|not an? ", re.I)),
    ("timeout", re.compile(r"timed out|took longer|time limit", re.I)),
    ("crashed", re.compile(r"crash|memory limit|exit code", re.I)),
    ("too_large", re.compile(r"too large|larger than|too big|bomb", re.I)),
    ("ocr", re.compile(r"\bOCR\b|tesseract", re.I)),
    ("no_content", re.compile(r"no content|no text|empty", re.I)),
    ("damaged", re.compile(r"damaged|corrupt|invalid|cannot be read", re.I)),
    ("unreadable", re.compile(r"permission|cannot read|not readable|vanished|no such file", re.I)),
)


def failure_kind(reason: str | None) -> str:
    """One word for why a file failed, from a fixed list (never the reason's own text)."""
    for kind, pattern in FAILURE_KINDS:
        if reason and pattern.search(reason):
            return kind
    return "other"


def failures_by_kind(catalog: Catalog) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in catalog.query("SELECT reason FROM files WHERE status = 'failed'"):
        kind = failure_kind(r["reason"])
        out[kind] = out.get(kind, 0) + 1
    return out


def answers_by_day(catalog: Catalog, since: float) -> list[dict[str, Any]]:
    """Per local day since `since`: questions, declined, model not used, first-text and total latency
    (median and 95th percentile, ms)."""
    rows = catalog.query(
        "SELECT date(created_at, 'unixepoch', 'localtime') AS day,"
        " json_extract(record, '$.abstained') AS abstained,"
        " json_extract(record, '$.finish_reason') AS finish,"
        " json_extract(record, '$.timings.first_text_ms') AS first_ms,"
        " json_extract(record, '$.timings.total_ms') AS total_ms"
        " FROM messages WHERE role = 'assistant' AND created_at >= ? ORDER BY created_at",
        (since,),
    )
    days: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = days.setdefault(
            r["day"],
            {"day": r["day"], "questions": 0, "declined": 0, "no_model": 0, "_first": [], "_total": []},
        )
        d["questions"] += 1
        d["declined"] += int(bool(r["abstained"]))
        d["no_model"] += int(r["finish"] == "no_model")
        if r["first_ms"] is not None:
            d["_first"].append(float(r["first_ms"]))
        if r["total_ms"] is not None:
            d["_total"].append(float(r["total_ms"]))
    out = []
    for d in days.values():
        first, total = d.pop("_first"), d.pop("_total")
        d["first_text_p50_ms"] = _pct(first, 50)
        d["total_p50_ms"] = _pct(total, 50)
        d["total_p95_ms"] = _pct(total, 95)
        out.append(d)
    return out


def model_failures_since(catalog: Catalog, since: float) -> list[str]:
    """Why the chat model was not used, for answers since `since` (newest last): its load failed."""
    rows = catalog.query(
        "SELECT json_extract(record, '$.model_problem') AS problem FROM messages WHERE role = 'assistant'"
        " AND created_at >= ? AND json_extract(record, '$.finish_reason') = 'no_model' ORDER BY id",
        (since,),
    )
    return [str(r["problem"] or "") for r in rows]


def last_answer_problem(catalog: Catalog) -> str:
    """Why the chat model was not used for the latest answer ('' when it was, or nothing was asked)."""
    rows = catalog.query(
        "SELECT json_extract(record, '$.finish_reason') AS finish, json_extract(record, '$.model_problem') AS"
        " problem FROM messages WHERE role = 'assistant' ORDER BY id DESC LIMIT 1"
    )
    if rows and rows[0]["finish"] == "no_model":
        return str(rows[0]["problem"] or "the model could not be loaded")
    return ""


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)
