"""What users said of answers, kept in the catalog beside the answers: ratings, reasons and corrections
(the passage that does answer, the expected answer, or that nothing should have been found), and the runs
of the regression set those make (`core/feedback`).

A rating keeps a copy of its question, so it outlives the chat it was given in; a correction is removed
only by its user (`remove`), and is then no longer used or checked.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sealroom.core.protocols import REASONS
from sealroom.core.runtime.errors import UsageError
from sealroom.core.store.catalog import Catalog, chunk_id


@dataclass
class Rating:
    id: int
    answer_id: int | None
    question: str
    rating: str
    reason: str
    passage: str  # chunk id, '' when none
    expected: str
    cited: list[str]
    abstained: bool
    workspace: str
    created_at: float
    removed_at: float | None = None

    @property
    def is_correction(self) -> bool:
        """A bad rating that says what the answer should have been."""
        return self.rating == "bad" and bool(self.passage or self.expected or self.reason == "should_abstain")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalRun:
    id: int
    at: float
    trigger: str
    fingerprint: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)


class Ratings:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog  # its schema holds the tables (catalog.RATINGS)

    def rate(
        self,
        answer_id: int,
        good: bool,
        reason: str = "",
        passage: str = "",
        expected: str = "",
    ) -> Rating:
        """Store a rating of a stored answer; a later rating of the same answer replaces the earlier one."""
        found = self.catalog.answers(answer_id=answer_id)
        if not found:
            raise UsageError(f"no answer with id {answer_id}")
        if good and (reason or passage or expected):
            raise UsageError("a helpful answer needs no reason or correction")
        if not good and reason not in REASONS:
            raise UsageError(f"say why it was not helpful: one of {', '.join(REASONS)}")
        if passage and not self.catalog.chunks_by_id([passage]):
            raise UsageError(f"no passage {passage} in the index (see `sealroom search … --json`)")
        if len(expected) > 2000:
            raise UsageError("the expected answer is too long (at most 2000 characters)")
        record = found[0]["record"]
        cited = [chunk_id(c["sha256"], c["seq"]) for c in record.get("citations") or []]
        now = time.time()
        with self.catalog.transaction() as db:
            db.execute(
                "UPDATE feedback SET removed_at = ? WHERE answer_id = ? AND removed_at IS NULL",
                (now, answer_id),
            )
            cur = db.execute(
                "INSERT INTO feedback(answer_id, question, rating, reason, passage, expected, cited, abstained,"
                " workspace, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    str(record.get("question") or ""),
                    "good" if good else "bad",
                    reason or None,
                    passage or None,
                    expected.strip() or None,
                    json.dumps(cited),
                    int(bool(record.get("abstained"))),
                    found[0]["workspace"],
                    now,
                ),
            )
        return self.get(int(cur.lastrowid or 0))

    def get(self, rating_id: int) -> Rating:
        rows = self.catalog.query("SELECT * FROM feedback WHERE id = ?", (rating_id,))
        if not rows:
            raise UsageError(f"no feedback with id {rating_id}")
        return _rating(rows[0])

    def all(self, removed: bool = False) -> list[Rating]:
        where = "" if removed else " WHERE removed_at IS NULL"
        return [_rating(r) for r in self.catalog.query(f"SELECT * FROM feedback{where} ORDER BY id")]

    def for_answers(self, answer_ids: list[int]) -> dict[int, Rating]:
        """The standing rating of each of these answers (what the window shows beside them)."""
        if not answer_ids:
            return {}
        marks = ",".join("?" * len(answer_ids))
        rows = self.catalog.query(
            f"SELECT * FROM feedback WHERE removed_at IS NULL AND answer_id IN ({marks})", answer_ids
        )
        return {int(r["answer_id"]): _rating(r) for r in rows}

    def remove(self, rating_id: int) -> Rating:
        rating = self.get(rating_id)
        with self.catalog.transaction() as db:
            db.execute(
                "UPDATE feedback SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
                (time.time(), rating_id),
            )
        return rating

    def counts_by_day(self, since: float) -> list[tuple[str, str, int]]:
        """(day, rating, count) of ratings given since `since` (removed ones included: they were given)."""
        rows = self.catalog.query(
            "SELECT date(created_at, 'unixepoch', 'localtime') AS day, rating, count(*) AS n FROM feedback"
            " WHERE created_at >= ? GROUP BY day, rating ORDER BY day",
            (since,),
        )
        return [(r["day"], r["rating"], int(r["n"])) for r in rows]

    # --- regression runs -----------------------------------------------------------------------
    def add_run(self, trigger: str, fingerprint: dict[str, Any], results: list[dict[str, Any]]) -> EvalRun:
        now = time.time()
        with self.catalog.transaction() as db:
            cur = db.execute(
                "INSERT INTO eval_runs(at, trigger, fingerprint, results) VALUES (?, ?, ?, ?)",
                (now, trigger, json.dumps(fingerprint, sort_keys=True), json.dumps(results)),
            )
        return EvalRun(int(cur.lastrowid or 0), now, trigger, fingerprint, results)

    def runs(self, last: int = 20) -> list[EvalRun]:
        """The latest runs, newest first."""
        rows = self.catalog.query("SELECT * FROM eval_runs ORDER BY id DESC LIMIT ?", (last,))
        return [
            EvalRun(r["id"], r["at"], r["trigger"], json.loads(r["fingerprint"]), json.loads(r["results"]))
            for r in rows
        ]


def _rating(r: Any) -> Rating:
    return Rating(
        int(r["id"]),
        r["answer_id"],
        r["question"],
        r["rating"],
        r["reason"] or "",
        r["passage"] or "",
        r["expected"] or "",
        json.loads(r["cited"] or "[]"),
        bool(r["abstained"]),
        r["workspace"],
        float(r["created_at"]),
        r["removed_at"],
    )
