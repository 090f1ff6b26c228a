"""Does the chat model choose evidence better than Sealroom's scoring? (issue 23; dev split only)

    .venv/bin/python bench/chooser.py [--models default,qwen2.5-0.5b,...] [--keep DIR] [--candidates 6]

For each question of the real set's dev split, the pipeline retrieves as `ask` does and scores candidate
sentences as `EvidenceSelector` does. Today's answer (evidence only) is scored as `sealroom eval` scores it.
Then the model is shown the question and the top candidates, numbered, and must answer with one number (or 0
for "none answers"), held to that by a llama.cpp grammar. Printed per model:

- today: correct and cited, false abstentions, unanswerable declined;
- chooser alone: the chosen sentence (0 declines);
- chooser first: today's quotes, with the chosen one first when it is not among them;
- chooser veto: today's answer, declined where the model says 0.

The test split is never read: this decides a design, so it is tuned on dev.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sealroom.core.answer import evaluate
from sealroom.core.answer.evidence import EvidenceSelector
from sealroom.core.engine import Engine
from sealroom.core.runtime.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "bench" / "eval" / "real" / "questions.jsonl"
DOCS = ROOT / "bench" / "eval" / "real" / "docs"

SYSTEM = (
    "You pick the sentence that answers a question. Reply with the number of the one sentence that answers "
    "the question. Reply 0 if none of the sentences answers it."
)


def grammar(n: int) -> str:
    return "root ::= " + " | ".join(f'"{i}"' for i in range(n + 1))


def messages(question: str, shown: list[str]) -> list[dict[str, str]]:
    listing = "\n".join(f"{i}. {s}" for i, s in enumerate(shown, 1))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Sentences:\n{listing}\n\nQuestion: {question}\nNumber (0 if none):"},
    ]


def _refuse() -> Any:
    raise ModelError("evidence only")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="default")
    parser.add_argument("--keep", type=Path, default=Path(tempfile.mkdtemp(prefix="sealroom-chooser-")))
    parser.add_argument("--candidates", type=int, default=6)
    args = parser.parse_args()
    questions = [q for q in evaluate.load_questions(QUESTIONS) if q.split == "dev"]
    out: dict[str, Any] = {}
    with Engine(home=args.keep, purpose="bench-chooser") as engine:
        if str(DOCS) not in {p for _, p in engine.catalog.folders()}:
            engine.add_folder(str(DOCS))
        engine.index()
        for model in args.models.split(","):
            engine.apply_settings(
                dataclasses.replace(engine.settings, chat_model="" if model == "default" else model)
            )
            llm = engine.llm()
            pipe = engine.pipeline()
            pipe.generator = _refuse
            pool = EvidenceSelector(pipe.embedder, max_quotes=args.candidates, keep_ratio=0.0, min_score=0.0)
            rows = []
            for q in questions:
                answer = pipe.run(q.question)
                today = evaluate.score(q, answer)
                hits = pipe.relevant(pipe.retriever.search(q.question, pipe.k), q.question)
                cands = sorted(pool.select(q.question, hits), key=lambda e: -e.score)
                started = time.perf_counter()
                pick = 0
                if cands:
                    reply = "".join(
                        llm.generate(
                            messages=messages(q.question, [e.shown for e in cands]),
                            max_tokens=2,
                            grammar=grammar(len(cands)),
                        )
                    )
                    pick = int(reply.strip() or 0)
                ms = (time.perf_counter() - started) * 1000
                right = [
                    not q.unanswerable and e.path.endswith(q.source) and evaluate._matches(q.answers, e.shown)
                    for e in cands
                ]
                rows.append(
                    {
                        "id": q.id,
                        "unanswerable": q.unanswerable,
                        "today": today.correct and (q.unanswerable or today.cited_correctly),
                        "today_abstained": today.abstained,
                        "pick": pick,
                        "pick_right": pick > 0 and right[pick - 1],
                        "any_right": any(right),
                        "pick_in_today": pick > 0
                        and any(cands[pick - 1].quote == e.quote for e in answer.evidence),
                        "ms": ms,
                    }
                )
            out[model] = rows
            print(summary(model, rows), flush=True)
    (args.keep / "chooser.json").write_text(json.dumps(out, indent=1))
    return 0


def summary(model: str, rows: list[dict[str, Any]]) -> str:
    ans = [r for r in rows if not r["unanswerable"]]
    una = [r for r in rows if r["unanswerable"]]

    def share(xs: list[Any]) -> str:
        return f"{sum(xs) / max(1, len(xs)):.3f}"

    lines = [f"model {model}: {len(ans)} answerable, {len(una)} unanswerable (dev)"]
    lines.append(
        f"  today          correct&cited {share([r['today'] for r in ans])}  FA "
        f"{share([r['today_abstained'] for r in ans])}  declined {share([r['today'] for r in una])}"
    )
    lines.append(
        f"  chooser alone  correct&cited {share([r['pick_right'] for r in ans])}  FA "
        f"{share([r['pick'] == 0 for r in ans])}  declined {share([r['pick'] == 0 for r in una])}"
    )
    first = [r["today"] or (r["pick_right"] and not r["today_abstained"]) for r in ans]
    lines.append(f"  chooser first  correct&cited {share(first)} (upper bound: the pick added to today's)")
    veto_ans = [r["today"] and r["pick"] != 0 for r in ans]
    lines.append(
        f"  chooser veto   correct&cited {share(veto_ans)}  FA "
        f"{share([r['today_abstained'] or r['pick'] == 0 for r in ans])}  declined "
        f"{share([r['today'] or r['pick'] == 0 for r in una])}"
    )
    lines.append(
        f"  a right candidate among those shown to the model: {share([r['any_right'] for r in ans])}; "
        f"pick ms p50 {statistics.median([r['ms'] for r in rows]):.0f}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
