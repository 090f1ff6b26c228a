"""A real chat-model switch caught by the drift check (issue 27): Gemma 3 270M → Qwen2.5 Coder 0.5B.

    make models-extra   # the Qwen packs
    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/drift.py [--model qwen2.5-coder-0.5b-instruct]

Indexes the sample corpus (documents only), asks every question of the sample eval set that is not a
follow-up, and rates each answer as a careful user would from the set's expected answers: right → helpful;
declined when it should → helpful; answered when nothing should be found → "should have said not found";
wrong → not helpful with a correction: the passage of the expected file that holds the expected answer (as
a user picks it from a search), else the expected answer typed. Then the regression set runs on the default
model (the baseline), the chat model is switched, and the drift check runs by itself (`due()` says why).
Prints the drift report; writes bench/results/drift.json and, with --html, the HTML report.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
RESULTS = ROOT / "bench" / "results"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--html", type=Path)
    args = parser.parse_args()
    from sealroom.core.answer import evaluate
    from sealroom.core.engine import Engine
    from sealroom.core.feedback import report
    from sealroom.core.runtime.config import save_user_settings

    questions = [
        q for q in evaluate.load_questions(ROOT / "bench" / "eval" / "corpus.jsonl") if not q.follow_up
    ]
    with Engine(purpose="bench") as engine:
        copies = engine.home.parent / (engine.home.name + "-corpus")
        for sub in ("pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(str(evaluate.documents_only(CORPUS / sub, copies)))
        engine.index()
        kinds: dict[str, int] = {}
        for q in questions:
            answer = engine.ask(q.question)
            result = evaluate.score(q, answer)
            if q.unanswerable:
                kind = "good" if answer.abstained else "should_abstain"
                engine.feedback.rate(answer.answer_id, answer.abstained, "" if answer.abstained else kind)
            elif result.correct and result.cited_correctly:
                kind = "good"
                engine.feedback.rate(answer.answer_id, True)
            else:
                passage = _passage(engine, q)
                kind = "corrected passage" if passage else "expected answer"
                reason = "should_answer" if answer.abstained else "wrong"
                expected = "" if passage else re.sub(r"\\(.)", r"\1", q.answers[0].split("|")[0])
                engine.feedback.rate(answer.answer_id, False, reason, passage, expected)
            kinds[kind] = kinds.get(kind, 0) + 1
        print(f"rated {len(questions)} answers: {kinds}")
        t = time.perf_counter()
        baseline, _ = engine.feedback.check(engine.feedback.due() or "you asked")
        base_s = time.perf_counter() - t
        print(f"baseline ({engine.model_state}): {sum(r['passed'] for r in baseline.results)} of "
              f"{len(baseline.results)} as they should be, in {base_s:.0f} s")  # fmt: skip
        engine.apply_settings(save_user_settings({"chat_model": args.model}))
        trigger = engine.feedback.due()
        print(f"after the switch, due: {trigger!r}")
        t = time.perf_counter()
        _, drift = engine.feedback.check(trigger)
        after_s = time.perf_counter() - t
        assert drift is not None
        print(report.drift_text(drift.to_dict()))
        data = {
            "measured": time.strftime("%Y-%m-%d"),
            "questions": len(questions),
            "ratings": kinds,
            "baseline_s": round(base_s, 1),
            "check_s": round(after_s, 1),
            "drift": drift.to_dict(),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "drift.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        if args.html:
            engine.feedback.sample(force=True)
            report.write_html(args.html, engine.feedback.history(30), engine.feedback.drift_report())
            print(f"wrote {args.html}")
    return 0


def _passage(engine: object, q: object) -> str:
    """The passage of the expected file that holds the expected answer, found by a search as a user would."""
    patterns = [re.compile(a, re.IGNORECASE) for a in q.answers]  # type: ignore[attr-defined]
    for hit in engine.search(q.question, k=20):  # type: ignore[attr-defined]
        if Path(hit.path).name == q.source and any(p.search(" ".join(hit.text.split())) for p in patterns):  # type: ignore[attr-defined]
            return str(hit.chunk_id)
    return ""


if __name__ == "__main__":
    sys.exit(main())
