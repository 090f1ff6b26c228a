"""Structured log: JSON lines in the data directory, rotated by size.

Document text and questions are never passed to the logger; callers log ids, paths,
counts and timings. `stage()` times a step and logs it with its duration.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("sealroom")


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _QuietFileHandler(logging.handlers.RotatingFileHandler):
    """A log line that cannot be written (a full disk) is dropped: logging never prints a traceback
    over the user's terminal, and never stops the work it describes."""

    def handleError(self, record: logging.LogRecord) -> None:
        self.dropped = getattr(self, "dropped", 0) + 1


def setup(data_dir: Path, level: str = "INFO") -> Path:
    """Send the `sealroom` loggers to logs/sealroom.jsonl (5 MB × 5 files)."""
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True, mode=0o700)
    path = log_dir / "sealroom.jsonl"
    for handler in list(log.handlers):
        if getattr(handler, "sealroom", False):
            log.removeHandler(handler)
            handler.close()
    handler = _QuietFileHandler(path, maxBytes=5_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(JsonLineFormatter())
    handler.sealroom = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False
    return path


REMOVED = "[removed document]"


def forget(paths: Sequence[str], prefixes: Sequence[str] = ()) -> int:
    """Take documents' paths (and every path under `prefixes`) out of the log files, rotated ones included:
    once a document is out of the index, no log names it. The files are rewritten in place under the
    handler's lock (the handler keeps appending to the same file). Returns the lines changed."""
    escaped = [re.escape(json.dumps(p, ensure_ascii=False)[1:-1]) for p in paths if p]
    escaped += [
        re.escape(json.dumps(p.rstrip("/\\") + os.sep, ensure_ascii=False)[1:-1]) + r'[^"]*'
        for p in prefixes
        if p
    ]
    if not escaped:
        return 0
    pattern = re.compile("|".join(sorted(escaped, key=len, reverse=True)))
    handler = next((h for h in log.handlers if getattr(h, "sealroom", False)), None)
    if handler is None or not isinstance(handler, logging.FileHandler):
        return 0
    changed = 0
    handler.acquire()
    try:
        for path in Path(handler.baseFilename).parent.glob(Path(handler.baseFilename).name + "*"):
            try:
                with path.open("r+", encoding="utf-8", errors="surrogateescape") as f:
                    text = f.read()
                    new, n = pattern.subn(REMOVED, text)
                    if n:
                        f.seek(0)
                        f.write(new)
                        f.truncate()
                        changed += n
            except OSError:
                continue  # a log that cannot be rewritten now is rewritten at the next removal
    finally:
        handler.release()
    return changed


def event(name: str, **fields: Any) -> None:
    log.info(name, extra={"fields": fields})


def problem(name: str, error: bool = False, **fields: Any) -> None:
    """A warning (or an error) the diagnostics view lists."""
    log.log(logging.ERROR if error else logging.WARNING, name, extra={"fields": fields})


def recent_problems(path: Path, limit: int = 20) -> list[dict[str, Any]]:
    """The last warnings and errors of the log file (for the diagnostics view)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 1_000_000))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    found: list[dict[str, Any]] = []
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("warning", "error", "critical"):
            found.append(entry)
            if len(found) == limit:
                break
    return found


@contextmanager
def stage(name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Time a pipeline stage; the yielded dict may gain fields before it is logged."""
    started = time.perf_counter()
    extra: dict[str, Any] = dict(fields)
    try:
        yield extra
    finally:
        extra["stage"] = name
        extra["ms"] = round((time.perf_counter() - started) * 1000, 2)
        log.info("stage", extra={"fields": extra})
