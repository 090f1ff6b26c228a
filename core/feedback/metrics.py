"""Local metrics kept over time, and what IT may receive of them.

Gauges (files by status, failures by kind, outbox, disk, watcher, audit, corrections) are sampled into
`metrics.sqlite` in the data folder at most every `SAMPLE_EVERY_S`; daily figures of use (questions,
declined, latency, ratings) are read from the catalog's answer records. Nothing here holds a word of a
document, a question, an answer or a file name: names come from a fixed list (docs/metrics.md), values
are numbers. `it_file` and `write_textfile` (Prometheus, node_exporter's textfile collector) are built
from the same figures.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SAMPLE_EVERY_S = 900.0
KEEP_DAYS = 400

#: Every gauge: name → (help, label name or ''). The Prometheus names are `sealroom_<name>`.
GAUGES: dict[str, tuple[str, str]] = {
    "files": ("Files in watched folders by status", "status"),
    "passages": ("Passages in the index", ""),
    "failures": ("Files that could not be indexed, by kind of reason", "kind"),
    "outbox_waiting": ("Exports waiting in the outbox", ""),
    "outbox_failed": ("Exports that failed for good", ""),
    "outbox_oldest_waiting_hours": ("Hours the oldest waiting export has waited", ""),
    "disk_free_bytes": ("Free space on the data folder's disk", ""),
    "watcher_running": ("1 when the folder watcher runs and is healthy", ""),
    "watcher_restarts": ("Times the folder watcher was restarted since the app started", ""),
    "audit_ok": ("1 when the audit trail verifies", ""),
    "corrections": ("Standing ratings and corrections", "rating"),
    "model_load_failures_24h": ("Answers whose chat model failed to load in the last 24 hours", ""),
}
#: Daily figures: name → help. Counted from the catalog, per local day.
DAILY: dict[str, str] = {
    "questions": "Questions asked",
    "declined": "Answers that declined (nothing in the documents answers)",
    "no_model": "Answers given without the chat model (it failed to load)",
    "first_text_p50_ms": "Median time to the first text on screen, ms",
    "total_p50_ms": "Median time to the whole answer, ms",
    "total_p95_ms": "95th percentile time to the whole answer, ms",
    "ratings_good": "Answers rated helpful",
    "ratings_bad": "Answers rated not helpful",
}


class MetricsStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS samples (at REAL NOT NULL, name TEXT NOT NULL, label TEXT NOT NULL,"
            " value REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS samples_name ON samples(name, at)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def last_at(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT max(at) FROM samples").fetchone()
        return float(row[0] or 0.0)

    def add(self, values: Iterable[tuple[str, str, float]], at: float | None = None) -> None:
        at = time.time() if at is None else at
        rows = [(at, name, label, float(value)) for name, label, value in values]
        for _, name, _, _ in rows:
            if name not in GAUGES:
                raise ValueError(f"unknown metric {name}")  # only the documented names, never free text
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", rows)
            self._db.execute("DELETE FROM samples WHERE at < ?", (at - KEEP_DAYS * 86400,))
            self._db.execute("COMMIT")

    def latest(self) -> dict[tuple[str, str], float]:
        """The newest sample's values."""
        at = self.last_at()
        with self._lock:
            rows = self._db.execute("SELECT name, label, value FROM samples WHERE at = ?", (at,)).fetchall()
        return {(n, label): v for n, label, v in rows}

    def series(self, name: str, since: float, label: str | None = None) -> list[tuple[float, float]]:
        """(time, value) of a gauge since `since` (summed over its labels unless `label` is given)."""
        sql = "SELECT at, sum(value) FROM samples WHERE name = ? AND at >= ?"
        params: list[Any] = [name, since]
        if label is not None:
            sql += " AND label = ?"
            params.append(label)
        with self._lock:
            rows = self._db.execute(sql + " GROUP BY at ORDER BY at", params).fetchall()
        return [(float(a), float(v)) for a, v in rows]


def prometheus_text(latest: dict[tuple[str, str], float], daily_total: dict[str, float]) -> str:
    """The figures in Prometheus' text format (through prometheus_client, so the format is its own)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    for name, (help_text, label) in GAUGES.items():
        gauge = Gauge(f"sealroom_{name}", help_text, [label] if label else [], registry=registry)
        for (n, lab), value in latest.items():
            if n == name:
                (gauge.labels(lab) if label else gauge).set(value)
    for name, help_text in DAILY.items():
        if name in daily_total:
            Gauge(f"sealroom_{name}_7d", help_text + " (last 7 days)", registry=registry).set(
                daily_total[name]
            )
    return generate_latest(registry).decode()


def write_textfile(folder: Path, text: str) -> Path:
    """Write `sealroom.prom` into `folder` atomically, as node_exporter's textfile collector expects."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "sealroom.prom"
    tmp = folder / f".sealroom.prom.{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)  # the collector runs as another user
    os.replace(tmp, target)
    return target


def it_file(
    installation: str,
    version: str,
    latest: dict[tuple[str, str], float],
    days: list[dict[str, Any]],
) -> bytes:
    """The metrics file IT receives: numbers under documented names, no words of anyone's work."""
    gauges: dict[str, Any] = {}
    for (name, label), value in sorted(latest.items()):
        if label:
            gauges.setdefault(name, {})[label] = value
        else:
            gauges[name] = value
    daily = [{k: d.get(k) for k in ("day", *DAILY)} for d in days]
    data = {
        "schema": "sealroom-metrics",
        "schema_version": 1,
        "installation": installation,  # a random id made once per data folder
        "sealroom_version": version,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gauges": gauges,
        "daily": daily,
    }
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()
