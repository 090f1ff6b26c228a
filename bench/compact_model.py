"""What a smaller token-embedding table in the default chat model would buy, and cost (issue 11).

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/compact_model.py

Sealroom runs the default model as a compact copy (models/compact.py: its token table in Q5_0 instead
of Q8_0); this measures what that buys and costs. For the shipped file and the copy, each in
Sealroom's own model process:
- the model process's resident memory after answering (anon and file pages);
- tokens/s of greedy generation on five prompts;
- the answers eval set (bench/eval/corpus.jsonl) through the real pipeline on the sample corpus.
Results: bench/results/compact_model.json (not a goals row).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
QUESTIONS = ROOT / "bench" / "eval" / "corpus.jsonl"
PROMPTS = [
    "Evidence: [1] The lease term is five years. The tenant pays 2,400 EUR per month.\nQuestion: How long is the lease?\nAnswer:",
    "Evidence: [1] Patients allergic to penicillin receive clindamycin 600 mg.\nQuestion: What do they receive?\nAnswer:",
    "Summarise in one sentence: a homeomorphism is a continuous bijection whose inverse is continuous.",
    "The quarterly report shows revenue of 4.2 million, an increase of",
    "Write one sentence about shared drives.",
]


def model_process(path: Path) -> dict[str, Any]:
    """Resident memory and tokens/s of Sealroom's model process running `path`."""
    from sealroom.models.llm import LlmWorker

    worker = LlmWorker(path)
    try:
        worker.warm_up()
        rates = []
        for prompt in PROMPTS:
            started = time.perf_counter()
            pieces = list(worker.generate(prompt=prompt, max_tokens=64))
            rates.append(len(pieces) / (time.perf_counter() - started))
        assert worker._proc is not None
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{worker._proc.pid}/status").read_text().splitlines()
        )
        mb = {k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile")}
        return {
            "rss_mb": mb["VmRSS"],
            "anon_mb": mb["RssAnon"],
            "file_pages_mb": mb["RssFile"],
            "tokens_per_s": statistics.median(rates),
        }
    finally:
        worker.close()


def main() -> int:
    from sealroom.core.answer import evaluate
    from sealroom.core.engine import Engine
    from sealroom.models.catalogue import ModelCatalogue
    from sealroom.models.compact import COMPACT_NAME, derive

    questions = evaluate.load_questions(QUESTIONS)
    rows: dict[str, dict[str, Any]] = {}
    with Engine(purpose="bench compact model") as engine:
        shipped = Path(ModelCatalogue(engine.home).default().path)
        compact = engine.home / "models" / COMPACT_NAME
        derive(shipped, compact)
        for sub in ("pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(str(CORPUS / sub))
        engine.index()
        for name, path in (("shipped", shipped), ("compact", compact)):
            row: dict[str, Any] = {"size_mb": round(path.stat().st_size / 2**20, 1), **model_process(path)}
            # the shipped file is the default model: it runs as itself only with the compact copy off
            engine.apply_settings(
                dataclasses.replace(engine.settings, chat_model=str(path), compact_default_model=False)
            )
            engine.llm()
            summary = evaluate.summarise(evaluate.run_eval(engine, questions))
            row.update(
                {
                    k: summary[k]
                    for k in (
                        "correct",
                        "cited_correctly",
                        "abstained",
                        "leaks",
                        "unverified_shown",
                        "phrased",
                        "phrased_correctly",
                    )
                }
            )
            rows[name] = row
    keys = list(rows["shipped"])
    print(f"{'':18}" + "".join(f"{k[:14]:>15}" for k in keys))
    for name, row in rows.items():
        print(
            f"{name:18}"
            + "".join(f"{round(v, 3) if isinstance(v, float) else v!s:>15}" for v in row.values())
        )
    out = ROOT / "bench" / "results" / "compact_model.json"
    out.write_text(json.dumps({"measured": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1) + "\n")
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
