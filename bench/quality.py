"""`make bench-quality`: answer quality on the sample corpus and on real documents, for every installed model.

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/quality.py [--sets sample,real] [--models default,...]
        [--split dev] [--no-model] [--keep DIR]

Three question sets, each indexed once in its own data folder:
- ``sample``: `bench/eval/corpus.jsonl` over tests/corpus (the set the first thresholds were calibrated on);
- ``real``: `bench/eval/real/questions.jsonl` over bench/eval/real/docs, documents nobody here wrote, split
  into dev (tune on it) and test (report it). Its misses are printed for dev only.
- ``scanned``: the real set's PDF manual questions over a scanned copy of that manual (every page rendered
  at 200 dpi into an image-only PDF of the same name, read by OCR); compared with the same questions over
  the original (the real set's manual-pdf figures), it must stay within 10 points.

Prints a table per model and set, writes bench/results/quality.json, and exits 1 when the default model
misses a target: the sample set's (`evaluate.TARGETS`) or the real set's on its test split
(`evaluate.REAL_TARGETS`, and a dev-test gap of at most 5 points). `--no-model` answers from the evidence
alone (a quick tuning loop); `--keep DIR` keeps the index in DIR for the next run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sealroom.core.answer import evaluate
from sealroom.core.answer.pipeline import ModelInfo
from sealroom.core.engine import Engine
from sealroom.core.runtime.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
RESULTS = ROOT / "bench" / "results"
SETS = {
    "sample": (
        ROOT / "bench" / "eval" / "corpus.jsonl",
        [CORPUS / s for s in ("pdf-samples", "docx-samples", "email-samples")],
    ),
    "real": (
        ROOT / "bench" / "eval" / "real" / "questions.jsonl",
        [ROOT / "bench" / "eval" / "real" / "docs"],
    ),
}
COLUMNS = [
    "correct_and_cited",
    "correct",
    "abstained",
    "false_abstentions",
    "unverified_shown",
    "direct_answer",
    "phrased",
    "first_text_after_retrieval_ms",
    "total_ms",
]


def installed_models() -> list[str]:
    """'' (the default) and the optional packs that are installed."""
    from sealroom.models.packs import PACKS

    return [""] + [p.key for p in PACKS if p.installed()]


def _refuse() -> tuple[Any, ModelInfo]:
    raise ModelError("left out by bench/quality.py --no-model")


SCANNED_CORPUS = "manual-pdf"


def scanned_manual(home: Path) -> Path:
    """A folder holding the real set's PDF manual as a scan (made once per data folder)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from scans import scanned_copy

    original = next((ROOT / "bench" / "eval" / "real" / "docs" / SCANNED_CORPUS).glob("*.pdf"))
    folder = home.parent / f"{home.name}-docs"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / original.name).exists():
        scanned_copy(original, folder / original.name, dpi=200)
    return folder


def run_set(name: str, home: Path, models: list[str], split: str | None, no_model: bool) -> dict[str, Any]:
    if name == "scanned":
        questions_path, folders = SETS["real"][0], [scanned_manual(home)]
    else:
        questions_path, folders = SETS[name]
    if name == "sample":  # the documents the questions were written for, not the corpus' licences
        folders = [evaluate.documents_only(f, home.parent / f"{home.name}-docs") for f in folders]
    questions = evaluate.load_questions(questions_path)
    if name == "scanned":
        questions = [q for q in questions if q.corpus == SCANNED_CORPUS]
    if split:
        questions = [q for q in questions if q.split == split]
    rows: dict[str, Any] = {}
    with Engine(home=home, purpose="bench-quality") as engine:
        known = {path for _, path in engine.catalog.folders()}
        for folder in folders:
            if str(folder) not in known:
                engine.add_folder(str(folder))
        started = time.perf_counter()
        engine.index()
        print(f"[{name}] index ready in {time.perf_counter() - started:.0f} s", flush=True)
        for model in models:
            engine.apply_settings(dataclasses.replace(engine.settings, chat_model=model))
            if no_model:
                engine.answering.pipeline = _without_model(engine.answering.pipeline)  # type: ignore[method-assign]
            else:
                engine.llm()  # load before the clock: the table measures answering, not loading
            results = evaluate.run_eval(engine, questions)
            splits = evaluate.summarise_splits(results)
            label = "evidence only" if no_model else engine.model_state.removeprefix("ready: ")
            print(evaluate.report(splits["all"], results, f"{label} [{name}]", show={"", "dev"}), flush=True)
            if len(splits) > 1:
                print(evaluate.split_table(splits), flush=True)
            missed = (
                evaluate.missed_real_targets(splits)
                if name == "real"
                else []
                if name == "scanned"  # judged against the original below (main)
                else evaluate.missed_targets(splits["all"])
            )
            corpora = {
                c: evaluate.summarise_splits([r for r in results if r.corpus == c]) for c in _corpora(results)
            }
            for corpus, figures in corpora.items():
                row = " ".join(
                    f"{s} {figures[s]['correct_and_cited']:.3f}" for s in ("dev", "test") if s in figures
                )
                print(f"  {corpus:<14} correct and cited: {row}", flush=True)
            rows[label] = {"default": model == "", **splits, "corpora": corpora, "missed": missed}
            if no_model:
                break
    return rows


def _corpora(results: list[evaluate.Result]) -> list[str]:
    return sorted({r.corpus for r in results if r.corpus})


def _without_model(make: Any) -> Any:
    def pipeline() -> Any:
        p = make()
        p.generator = _refuse
        return p

    return pipeline


def scanned_gap(sets: dict[str, Any]) -> list[str]:
    """The scanned manual against the original, the same questions, the default model: at most 10 points
    fewer correct and cited (on each split both sets measured)."""
    if "scanned" not in sets or "real" not in sets:
        return []
    scanned = next(row for row in sets["scanned"].values() if row["default"])
    original = next(row for row in sets["real"].values() if row["default"])["corpora"].get(SCANNED_CORPUS, {})
    out = []
    for split in ("dev", "test"):
        if split in scanned and split in original:
            a, b = scanned[split]["correct_and_cited"], original[split]["correct_and_cited"]
            print(
                f"scanned manual, {split}: correct and cited {a:.3f} vs {b:.3f} from the original ({a - b:+.3f})"
            )
            if a < b - 0.10:
                out.append(
                    f"scanned: {split} correct and cited {a:.3f}, more than 10 points below the original {b:.3f}"
                )
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sets", default="sample,real,scanned", help="comma-separated: sample, real, scanned"
    )
    parser.add_argument(
        "--models", help="comma-separated: 'default' and/or pack names (default: all installed)"
    )
    parser.add_argument("--split", choices=["dev", "test"], help="only this split of the real set")
    parser.add_argument("--no-model", action="store_true", help="answer from the evidence alone")
    parser.add_argument("--keep", type=Path, help="keep each set's index under this folder, for the next run")
    args = parser.parse_args()
    models = installed_models()
    if args.models:
        models = ["" if m == "default" else m for m in args.models.split(",")]
    out: dict[str, Any] = {"measured_at": time.strftime("%Y-%m-%d %H:%M"), "sets": {}}
    missed: list[str] = []
    for name in args.sets.split(","):
        home = (args.keep / name) if args.keep else Path(tempfile.mkdtemp(prefix=f"sealroom-quality-{name}-"))
        rows = run_set(name, home, models, args.split if name in ("real", "scanned") else None, args.no_model)
        out["sets"][name] = rows
        missed += [f"{name}: {m}" for row in rows.values() if row["default"] for m in row["missed"]]
    missed += scanned_gap(out["sets"])
    print()
    for name, rows in out["sets"].items():
        print(f"{name:<8}{'model':<44}" + "".join(f"{c[:12]:>13}" for c in COLUMNS))
        for label, row in rows.items():
            for split in ("dev", "test", "all"):
                if split in row and (split != "all" or "test" not in row):
                    fig = row[split]
                    print(f"{split:<8}{label[:43]:<44}" + "".join(f"{fig[c]!s:>13}" for c in COLUMNS))
    if not args.split and not args.no_model and not args.models:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "quality.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"written: {path.relative_to(ROOT)}")
    if missed:
        print("default model misses: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SEALROOM_HOME", tempfile.mkdtemp(prefix="sealroom-quality-"))
    sys.exit(main())
