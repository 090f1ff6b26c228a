"""The user's own regression set: every rated or corrected answer becomes an item with what the answer must
do (decline, cite a passage, state an expected answer, cite what it cited when it was rated helpful), and
a drift report compares two runs of the set item by item.

A run measures the pipeline itself: corrections are not applied (an item answered from its own correction
would always pass). It runs after anything that can change answers: the `fingerprint` changed.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sealroom.core.answer.pipeline import Answer, AnswerPipeline
from sealroom.core.answer.text import content_terms
from sealroom.core.runtime import tracing
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.paths import sealroom_version
from sealroom.core.store.catalog import chunk_id
from sealroom.core.store.ratings import EvalRun, Rating

#: Settings that change answers; a change of any is a reason to run the set again (and can be undone).
ANSWER_SETTINGS = (
    "chat_model",
    "compact_default_model",
    "search_k",
    "min_similarity",
    "min_evidence",
    "max_answer_tokens",
    "n_ctx",
    "chunk_tokens",
    "chunk_overlap",
)
#: An expected answer is stated when the answer holds this share of its meaningful words.
EXPECTED_SHARE = 0.6

#: What an item checks, in words for the report.
EXPECTS = {
    "abstain": 'says "not found"',
    "passage": "cites the passage you chose",
    "expected": "states the answer you expected",
    "cited": "cites what the helpful answer cited",
    "answer": "answers (does not decline)",
    "changed": "differs from the answer rated bad",
}


@dataclass
class Item:
    id: int  # the rating's id
    question: str
    expect: str  # a key of EXPECTS
    workspace: str
    chunks: list[str] = field(default_factory=list)  # the passage, or what the helpful answer cited
    expected: str = ""


def items(ratings: list[Rating]) -> list[Item]:
    """One item per standing rating, with what its answer must do."""
    out = []
    for r in ratings:
        if r.rating == "good":
            expect, chunks = ("abstain", []) if r.abstained else ("cited", r.cited)
        elif r.passage:
            expect, chunks = "passage", [r.passage]
        elif r.reason == "should_abstain":
            expect, chunks = "abstain", []
        elif r.expected:
            expect, chunks = "expected", []
        elif r.reason == "should_answer":
            expect, chunks = "answer", []
        else:
            expect, chunks = "changed", r.cited
        out.append(Item(r.id, r.question, expect, r.workspace, list(chunks), r.expected))
    return out


def cited_chunks(answer: Answer) -> list[str]:
    return list(dict.fromkeys(chunk_id(e.sha256, e.seq) for e in answer.evidence))


def check(item: Item, answer: Answer) -> dict[str, Any]:
    """The item's result: whether the answer did what it must, and what it was."""
    cited = cited_chunks(answer)
    if item.expect == "abstain":
        passed = answer.abstained
    elif item.expect in ("passage", "cited"):
        passed = not answer.abstained and bool(set(item.chunks) & set(cited))
    elif item.expect == "expected":
        want = content_terms(item.expected)
        said = content_terms(answer.text)
        passed = not answer.abstained and bool(want) and len(want & said) >= EXPECTED_SHARE * len(want)
    elif item.expect == "answer":
        passed = not answer.abstained
    else:  # "changed"
        passed = answer.abstained or set(cited) != set(item.chunks)
    return {
        "id": item.id,
        "question": item.question,
        "expect": item.expect,
        "passed": bool(passed),
        "abstained": answer.abstained,
        "cited": cited,
        "answer_sha256": hashlib.sha256(answer.text.encode()).hexdigest(),
        "answer": answer.text,
        "model": answer.model.name,
        "total_ms": answer.timings.get("total_ms", 0.0),
    }


def run(
    set_items: list[Item],
    pipeline: AnswerPipeline,
    folders: Callable[[str], list[str]],
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """Ask every item's question through `pipeline` (no correction applied); `folders(workspace)`."""
    results = []
    for i, item in enumerate(set_items):
        if stop is not None and stop.is_set():
            break
        with tracing.ask(drift_check_item=item.id):
            answer = pipeline.run(item.question, folders=folders(item.workspace) or None)
        results.append(check(item, answer))
        if progress:
            progress(i + 1, len(set_items))
    return results


def fingerprint(settings: Settings, embedding_model: str, parser_version: str) -> dict[str, Any]:
    """Everything that can change answers: Sealroom's version, the models, the parser, the settings."""
    return {
        "version": sealroom_version(),
        "embedding_model": embedding_model,
        "parser_version": parser_version,
        "settings": {k: getattr(settings, k) for k in ANSWER_SETTINGS},
    }


def differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[object]]:
    """What changed between two fingerprints: {name: [before, after]} (settings by their own names)."""
    out: dict[str, list[object]] = {}
    for key in ("version", "embedding_model", "parser_version"):
        if before.get(key) != after.get(key):
            out[key] = [before.get(key), after.get(key)]
    b, a = before.get("settings", {}), after.get("settings", {})
    for key in sorted(set(b) | set(a)):
        if b.get(key) != a.get(key):
            out[key] = [b.get(key), a.get(key)]
    return out


def settings_text(settings: dict[str, Any]) -> str:
    """Settings as the user reads them, e.g. going back to them: "min_evidence = 0.3, chat_model = default"."""
    return ", ".join(f"{k} = {v or 'default'}" for k, v in settings.items())


def describe(changes: dict[str, list[object]]) -> str:
    if not changes:
        return "nothing that changes answers"
    parts = []
    for key, (old, new) in changes.items():
        if key == "chat_model":
            old, new = old or "the default model", new or "the default model"
        parts.append(f"{key.replace('_', ' ')} {old} → {new}")
    return ", ".join(parts)


@dataclass
class DriftReport:
    """Two runs of the set compared item by item."""

    before: dict[str, Any]  # run id, date, trigger, fingerprint
    after: dict[str, Any]
    changes: dict[str, list[object]]  # what changed between them
    items: list[dict[str, Any]]  # per item: question, expect, before and after (passed, abstained, answer)
    figures: dict[str, Any]  # passed and declined, before and after, on the items both runs hold
    regression: bool
    revertible: dict[str, Any] = field(default_factory=dict)  # the settings to go back to

    @property
    def worse(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i["status"] == "worse"]

    @property
    def better(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i["status"] == "better"]

    def summary(self) -> str:
        f = self.figures
        line = (
            f"{f['passed_after']} of {f['items']} saved questions right after {describe(self.changes)} "
            f"(were {f['passed_before']}): {len(self.better)} better, {len(self.worse)} worse, "
            f"{f['changed']} answered differently"
        )
        return ("Regression: " if self.regression else "") + line

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def compare(before: EvalRun, after: EvalRun) -> DriftReport:
    old = {r["id"]: r for r in before.results}
    rows = []
    for new in after.results:
        prev = old.get(new["id"])
        if prev is None:
            continue  # an item rated since the earlier run: nothing to compare
        if prev["passed"] and not new["passed"]:
            status = "worse"
        elif new["passed"] and not prev["passed"]:
            status = "better"
        elif prev["answer_sha256"] != new["answer_sha256"]:
            status = "changed"
        else:
            status = "same"
        rows.append(
            {
                "id": new["id"],
                "question": new["question"],
                "expect": EXPECTS.get(new["expect"], new["expect"]),
                "status": status,
                "before": {k: prev[k] for k in ("passed", "abstained", "answer", "model")},
                "after": {k: new[k] for k in ("passed", "abstained", "answer", "model")},
            }
        )
    passed_before = sum(r["before"]["passed"] for r in rows)
    passed_after = sum(r["after"]["passed"] for r in rows)
    changes = differences(before.fingerprint, after.fingerprint)
    settings = before.fingerprint.get("settings", {})
    return DriftReport(
        before=_run_header(before),
        after=_run_header(after),
        changes=changes,
        items=rows,
        figures={
            "items": len(rows),
            "passed_before": passed_before,
            "passed_after": passed_after,
            "declined_before": sum(r["before"]["abstained"] for r in rows),
            "declined_after": sum(r["after"]["abstained"] for r in rows),
            "changed": sum(r["status"] != "same" for r in rows),
        },
        regression=passed_after < passed_before,
        revertible={k: settings[k] for k in changes if k in settings},
    )


def _run_header(run: EvalRun) -> dict[str, Any]:
    return {"run": run.id, "at": run.at, "trigger": run.trigger, "fingerprint": run.fingerprint}
