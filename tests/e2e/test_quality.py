"""The quality bar, measured as `make bench-quality` does: the repo's eval set, the real default model."""

from pathlib import Path

import pytest

from sealroom.core import evaluate
from sealroom.core.engine import Engine
from tests.conftest import CORPUS, ROOT

pytestmark = pytest.mark.slow

QUESTIONS = ROOT / "bench" / "eval" / "corpus.jsonl"


def test_the_eval_set_is_what_the_issue_asks_for():
    questions = evaluate.load_questions(QUESTIONS)
    kinds = [
        q
        for q in questions
        if not q.unanswerable and any(c.isdigit() or c == "@" for c in "".join(q.answers))
    ]
    assert len(questions) >= 60
    assert sum(q.unanswerable for q in questions) >= 15
    assert sum(bool(q.follow_up) for q in questions) >= 6
    assert len(kinds) >= 15  # numbers, dates, identifiers, addresses
    for q in questions:
        assert q.unanswerable or (q.answers and list(CORPUS.rglob(q.source))), q.id


def test_the_default_model_meets_every_quality_target(home: Path):
    questions = evaluate.load_questions(QUESTIONS)
    with Engine() as engine:
        for sub in ("pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(str(CORPUS / sub))
        engine.index()
        results = evaluate.run_eval(engine, questions)
    summary = evaluate.summarise(results)
    print("\n" + evaluate.report(summary, results, "default"))
    assert evaluate.missed_targets(summary) == []
    assert summary["leaks"] == 0 and summary["unverified_shown"] == 0
