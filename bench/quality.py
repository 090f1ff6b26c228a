"""`make bench-quality`: the eval set on the sample corpus, for every installed chat model.

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/quality.py [--models default,qwen2.5-coder-0.5b-instruct]

Indexes tests/corpus once, then runs `bench/eval/corpus.jsonl` through the real answer
pipeline with each model, prints a table per model and one comparison table, writes
bench/results/quality.json, and exits 1 when the default model misses a target.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from sealroom.core import evaluate
from sealroom.core.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
QUESTIONS = ROOT / "bench" / "eval" / "corpus.jsonl"
RESULTS = ROOT / "bench" / "results"
COLUMNS = [
    "hit_at_5",
    "correct",
    "cited_correctly",
    "abstained",
    "false_abstentions",
    "leaks",
    "unverified_shown",
    "dropped_sentences",
    "phrased",
    "phrased_correctly",
    "first_text_after_retrieval_ms",
    "total_ms",
]


def installed_models(engine: Engine) -> list[str]:
    """'' (the default) and the optional packs that are installed."""
    from sealroom.models.packs import PACKS

    return [""] + [p.key for p in PACKS if p.installed()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--models", help="comma-separated: 'default' and/or pack names (default: all installed)"
    )
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args()
    questions = evaluate.load_questions(args.questions)
    rows: dict[str, dict] = {}
    with Engine(purpose="bench-quality") as engine:
        for sub in ("pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(str(CORPUS / sub))
        started = time.perf_counter()
        engine.index()
        print(f"indexed the sample corpus in {time.perf_counter() - started:.0f} s", flush=True)
        models = installed_models(engine)
        if args.models:
            models = ["" if m == "default" else m for m in args.models.split(",")]
        default_missed: list[str] = []
        for model in models:
            engine.apply_settings(dataclasses.replace(engine.settings, chat_model=model))
            engine.llm()  # load before the clock: the table measures answering, not loading
            results = evaluate.run_eval(engine, questions)
            summary = evaluate.summarise(results)
            name = engine.model_state.removeprefix("ready: ")
            print(evaluate.report(summary, results, name), flush=True)
            missed = evaluate.missed_targets(summary)
            rows[name] = {"default": model == "", **summary, "missed": missed}
            if model == "":
                default_missed = missed
    print()
    print(f"{'model':<44}" + "".join(f"{c[:12]:>13}" for c in COLUMNS))
    for name, row in rows.items():
        print(
            f"{name + (' (default)' if row['default'] else ''):<44}"
            + "".join(f"{row[c]!s:>13}" for c in COLUMNS)
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "quality.json"
    out.write_text(
        json.dumps({"measured_at": time.strftime("%Y-%m-%d %H:%M"), "models": rows}, indent=2) + "\n"
    )
    print(f"written: {out.relative_to(ROOT)}")
    if default_missed:
        print("default model misses: " + "; ".join(default_missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
