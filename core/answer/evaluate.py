"""`sealroom eval`: answer quality measured on a question set, against fixed targets.

A question set is JSON lines: {"id", "question", "answers": [regex, ...], "source": file name}
or {"id", "question", "unanswerable": true}; "follow_up": ID asks in the chat of an
earlier line; "split" ("dev" or "test") and "corpus" group the figures. Each answer is scored
as a careful reader would: is the expected fact in what was shown, does a citation of the right
file hold it, was an unanswerable question declined, did anything of our prompt leak, is every
figure shown in its evidence, and does the direct-answer candidate (`Answer.direct`) state the answer.

A set with splits is reported per split, with the gap between them: thresholds are tuned on
"dev" and the figures that count are "test"'s (bench/eval/real, `make bench-quality`).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sealroom.core.answer.pipeline import Answer
from sealroom.core.answer.prompts import EXAMPLE_ANSWER
from sealroom.core.answer.text import content_terms, figures
from sealroom.core.answer.verify import CITATION, SCAFFOLDING
from sealroom.core.runtime.errors import UsageError

TARGETS = {
    "correct": 0.85,  # of answerable questions
    "cited_correctly": 0.95,  # of correct answers
    "abstained": 0.90,  # of unanswerable questions
    "false_abstentions": 0.10,  # of answerable questions, at most
    "leaks": 0,
    "unverified_shown": 0,
    "first_text_after_retrieval_ms": 500,  # p50
    "total_ms": 6000,  # p50
}
#: What answers on real documents must reach (issue 23), on the test split of bench/eval/real.
REAL_TARGETS = {
    "correct_and_cited": 0.85,  # of answerable questions
    "abstained": 0.90,
    "false_abstentions": 0.10,
    "leaks": 0,
    "unverified_shown": 0,
    "direct_answer": 0.60,  # of answerable questions: a verified sentence stating the answer, fit to go first
    "first_text_after_retrieval_ms": 500,
    "total_ms": 2500,
}
MAX_GAP = 0.05  # dev minus test, on each share
AT_MOST = ("false_abstentions", "leaks", "unverified_shown")


@dataclass
class Question:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    source: str = ""
    unanswerable: bool = False
    follow_up: str = ""
    split: str = ""  # "dev" (tune on it) or "test" (report it); "" for an unsplit set
    corpus: str = ""
    where: str | int | None = None  # the page or section that holds the answer (for people reading a miss)
    kind: str = ""  # what the question asks for: number, date, name, path, field, version, rule, ...


@dataclass
class Result:
    id: str
    question: str
    unanswerable: bool
    hit_at_5: bool
    correct: bool
    cited_correctly: bool
    direct_answer: bool  # the direct-answer candidate (verified) states the expected answer
    direct_shown: bool  # there was a direct-answer candidate, right or not
    abstained: bool
    leak: bool
    unverified_shown: int
    dropped: int
    phrased: bool  # a generated sentence was shown after the evidence
    phrased_correctly: bool  # ... and it states the expected answer
    first_text_after_retrieval_ms: float
    total_ms: float
    answer: str
    evidence_score: float  # the best evidence sentence's score: what abstention is calibrated on
    split: str = ""
    corpus: str = ""
    miss: str = ""  # why it is wrong: retrieval, selection, false_abstention, not_declined (see `miss_class`)
    cut_quotes: int = 0  # quotes shown that end mid-clause (no closing punctuation)


#: The sample corpus' own bookkeeping: its licences and pdf-samples' metadata (files.json). Sealroom indexes
#: them like any file (issue 26); the sample questions were written for the documents, so the sample eval
#: watches a copy of the documents alone (`documents_only`). With them visible, two unanswerable questions
#: are answered from them (README, "Measuring answer quality").
BOOKKEEPING = frozenset(["LICENSE", "files.json"])


def documents_only(folder: Path, into: Path) -> Path:
    """A copy of `folder` without the corpus' bookkeeping files (made once; kept in `into`)."""
    import shutil

    target = into / folder.name
    if not target.exists():
        shutil.copytree(folder, target, ignore=lambda _, names: [n for n in names if n in BOOKKEEPING])
    return target


def load_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            questions.append(Question(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise UsageError(f"{path}:{i}: not a question line ({exc})") from None
    ids = {q.id for q in questions}
    for q in questions:
        if q.follow_up and q.follow_up not in ids:
            raise UsageError(f"question {q.id} follows up {q.follow_up}, which is not in {path}")
    return questions


def _matches(patterns: list[str], text: str) -> bool:
    flat = " ".join(text.split())
    return any(re.search(p, flat, re.IGNORECASE) for p in patterns)


def states_answer(patterns: list[str], question: str, sentence: str, quotes: str) -> bool:
    """Whether a generated sentence states the expected answer: it matches a pattern, or it holds what the
    question does not already have of the pattern's match in the quotes: its figures if it has any, else its
    words ("The default value of wal_level is replica" states "default value is replica")."""
    if _matches(patterns, sentence):
        return True
    flat = " ".join(quotes.split())
    said = content_terms(sentence) | figures(sentence)
    for p in patterns:
        m = re.search(p, flat, re.IGNORECASE)
        if m is None:
            continue
        numbers = figures(m.group(0)) - figures(question)  # a fact with figures: its figures are the answer
        need = numbers or (content_terms(m.group(0)) - content_terms(question))
        if need and need <= said:
            return True
    return False


def unverified_figures(answer: Answer) -> int:
    """Shown generated sentences stating a number or identifier that their cited evidence lacks."""
    count = 0
    for s in answer.shown:
        evidence = " ".join(e.shown for e in answer.evidence if e.n in s.cites)
        count += bool(figures(CITATION.sub("", s.text)) - figures(evidence))
    return count


def score(q: Question, answer: Answer) -> Result:
    text = answer.text
    hit = any(h.path.endswith(q.source) for h in answer.sources[:5]) if q.source else False
    correct = answer.abstained if q.unanswerable else (not answer.abstained and _matches(q.answers, text))
    cited = (
        not q.unanswerable
        and correct
        and any(c["path"].endswith(q.source) and _matches(q.answers, c["text"]) for c in answer.citations)
    )
    quotes = " ".join(e.shown for e in answer.evidence)
    leak = bool(SCAFFOLDING.search(text)) or CITATION.sub("", EXAMPLE_ANSWER).strip(" .") in text
    t = answer.timings
    return Result(
        q.id,
        q.question,
        q.unanswerable,
        hit,
        correct,
        cited,
        answer.direct is not None
        and not q.unanswerable
        and states_answer(q.answers, q.question, answer.direct.text, quotes),
        answer.direct is not None,
        answer.abstained,
        leak,
        unverified_figures(answer),
        len(answer.dropped),
        bool(answer.shown),
        bool(answer.shown)
        and not q.unanswerable
        and states_answer(q.answers, q.question, " ".join(s.text for s in answer.shown), quotes),
        round(t.get("first_text_ms", 0) - t.get("retrieve_ms", 0), 1),
        t.get("total_ms", 0.0),
        text,
        max((e.score for e in answer.evidence), default=0.0),
        q.split,
        q.corpus,
        miss_class(q, answer, correct, cited),
        sum(not re.search(r"[.!?:;)\]\"”'’]\s*$", e.quote) for e in answer.evidence if not answer.abstained),
    )


def miss_class(q: Question, answer: Answer, correct: bool, cited: bool) -> str:
    """Where a wrong answer went wrong: no retrieved passage holds the answer (retrieval); one does, but other
    sentences were quoted (selection); declined though a passage held it (false_abstention); an unanswerable
    question answered (not_declined)."""
    if q.unanswerable:
        return "" if correct else "not_declined"
    if correct and cited:
        return ""
    held = any(q.source and h.path.endswith(q.source) and _matches(q.answers, h.text) for h in answer.sources)
    if answer.abstained:
        return "false_abstention" if held else "retrieval"
    return "selection" if held else "retrieval"


def summarise(results: list[Result]) -> dict[str, Any]:
    answerable = [r for r in results if not r.unanswerable]
    unanswerable = [r for r in results if r.unanswerable]
    correct = [r for r in answerable if r.correct]

    def share(part: int, whole: int) -> float:
        return round(part / whole, 3) if whole else 0.0

    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "hit_at_5": share(sum(r.hit_at_5 for r in answerable), len(answerable)),
        "correct": share(len(correct), len(answerable)),
        "cited_correctly": share(sum(r.cited_correctly for r in correct), len(correct)),
        "correct_and_cited": share(sum(r.cited_correctly for r in correct), len(answerable)),
        "abstained": share(sum(r.abstained for r in unanswerable), len(unanswerable)),
        "false_abstentions": share(sum(r.abstained for r in answerable), len(answerable)),
        "leaks": sum(r.leak for r in results),
        "unverified_shown": sum(r.unverified_shown for r in results),
        "dropped_sentences": sum(r.dropped for r in results),
        "phrased": share(
            sum(r.phrased for r in results if not r.abstained), sum(not r.abstained for r in results)
        ),
        "phrased_correctly": share(
            sum(r.phrased_correctly for r in results), sum(r.phrased for r in results)
        ),
        "direct_answer": share(sum(r.direct_answer for r in answerable), len(answerable)),
        # direct-answer candidates (to any question) that do not state the expected answer: what showing
        # them first would cost
        "direct_not_right": share(
            sum(r.direct_shown and not r.direct_answer for r in results), sum(r.direct_shown for r in results)
        ),
        "misses": {k: sum(r.miss == k for r in results) for k in MISSES},
        "cut_quotes": sum(r.cut_quotes for r in results),
        "first_text_after_retrieval_ms": _p50([r.first_text_after_retrieval_ms for r in results]),
        "total_ms": _p50([r.total_ms for r in results]),
    }


def missed_targets(summary: dict[str, Any], targets: dict[str, float] | None = None) -> list[str]:
    missed = []
    for key, target in (TARGETS if targets is None else targets).items():
        value = summary[key]
        at_most = key in AT_MOST or key.endswith("_ms")
        if (value > target) if at_most else (value < target):
            missed.append(f"{key} {value} (target {'≤' if at_most else '≥'} {target})")
    return missed


MISSES = ("retrieval", "selection", "false_abstention", "not_declined")
SHARES = ("correct_and_cited", "correct", "abstained", "false_abstentions", "direct_answer")


def summarise_splits(results: list[Result]) -> dict[str, dict[str, Any]]:
    """The figures for every split ("dev", "test"), all questions together, and the gap (dev - test)."""
    out = {"all": summarise(results)}
    for split in sorted({r.split for r in results if r.split}):
        out[split] = summarise([r for r in results if r.split == split])
    if "dev" in out and "test" in out:
        out["gap"] = {k: round(out["dev"][k] - out["test"][k], 3) for k in SHARES}
    return out


def missed_real_targets(splits: dict[str, dict[str, Any]]) -> list[str]:
    """Issue 23's acceptance on the test split, and a dev-test gap of at most `MAX_GAP` on each share."""
    missed = missed_targets(splits.get("test", splits["all"]), REAL_TARGETS)
    for key, gap in splits.get("gap", {}).items():
        if abs(gap) > MAX_GAP:
            missed.append(f"dev-test gap on {key} {gap:+.3f} (at most ±{MAX_GAP})")
    return missed


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


class Asks(Protocol):
    """What an evaluation needs of the engine: to ask in a chat."""

    def ask(self, question: str, chat_id: int | None = None) -> Answer: ...


def run_eval(
    engine: Asks, questions: list[Question], progress: Callable[[int, int, str], None] | None = None
) -> list[Result]:
    """Ask every question through `engine` (follow-ups in their chat) and score the answers."""
    chats: dict[str, int] = {}
    results = []
    for i, q in enumerate(questions, 1):
        answer = engine.ask(q.question, chat_id=chats.get(q.follow_up) if q.follow_up else None)
        chats[q.id] = answer.chat_id
        results.append(score(q, answer))
        if progress:
            progress(i, len(questions), q.id)
    return results


def report(summary: dict[str, Any], results: list[Result], model: str, show: set[str] | None = None) -> str:
    """Misses (of the splits in `show`: all when None; never the test split's text when tuning), then figures."""
    lines = [f"model: {model}"]
    for r in results:
        if show is not None and r.split not in show:
            continue
        if not (r.correct and (r.unanswerable or r.cited_correctly)) or r.leak or r.unverified_shown:
            mark = "unanswerable" if r.unanswerable else "answerable"
            lines.append(f"  ✗ {r.id} ({mark}): {r.question} → {' '.join(r.answer.split())[:160]}")
    lines.append(f"{'figure':<32}{'value':>10}  target")
    for key, value in summary.items():
        target = TARGETS.get(key)
        lines.append(f"{key:<32}{value!s:>10}  {'' if target is None else target}")
    return "\n".join(lines)


def split_table(splits: dict[str, dict[str, Any]]) -> str:
    """One row per figure, one column per split (dev, test, all) and the gap."""
    columns = [c for c in ("dev", "test", "all") if c in splits]
    keys = [k for k in splits["all"] if not isinstance(splits["all"][k], dict)]
    lines = [
        f"{'figure':<32}" + "".join(f"{c:>10}" for c in columns) + ("       gap" if "gap" in splits else "")
    ]
    for key in keys:
        row = f"{key:<32}" + "".join(f"{splits[c][key]!s:>10}" for c in columns)
        if key in splits.get("gap", {}):
            row += f"{splits['gap'][key]:>+10.3f}"
        lines.append(row)
    for miss in MISSES:
        lines.append(
            f"{'misses: ' + miss:<32}" + "".join(f"{splits[c]['misses'][miss]!s:>10}" for c in columns)
        )
    return "\n".join(lines)


def results_json(summary: dict[str, Any], results: list[Result], model: str) -> dict[str, Any]:
    splits = summarise_splits(results)
    return {
        "model": model,
        "summary": summary,
        "splits": splits,
        "missed": missed_real_targets(splits) if "gap" in splits else missed_targets(summary),
        "results": [asdict(r) for r in results],
    }
