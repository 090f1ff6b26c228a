"""What the feedback loop's tracing and metrics cost (issue 27): ask latency and idle memory with
`monitoring` on, side by side with it off.

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/monitoring_cost.py

Latency: one engine over the PDF samples; the eval set's PDF questions are asked in rounds, each question
once with monitoring on and once off in alternating order (on-off, then off-on), so the model's warm state
and the machine's drift fall on both alike; the figure is the sum over the questions of each one's median
time of the whole ask (retrieve to stored answer, as `engine.ask` returns), on against off. Goal: ≤ 1.02.
Idle memory: two fresh processes, one with monitoring on and one off, each indexes, asks three questions,
runs the monitor's tick (sample, textfile) when on, waits idle, and reports its process tree's RSS
(the model's worker included). Goal: on ≤ off + 15 MB. Rows go to bench/results/monitoring.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from goals import Row, write

ROOT = Path(__file__).resolve().parents[1]
PDFS = ROOT / "tests" / "corpus" / "pdf-samples"
QUESTIONS = [
    row["question"]
    for row in map(json.loads, (ROOT / "bench" / "eval" / "corpus.jsonl").read_text().splitlines())
    if row.get("source", "").endswith(".pdf") and not row.get("follow_up")
]
ROUNDS = int(os.environ.get("ROUNDS", 3))
MEMORY_MARGIN_MB = 15


def latency() -> tuple[float, float, float]:
    """(on ms, off ms: the sums over the questions of each one's median time; the median of the
    per-question on/off ratios)."""
    from sealroom.core.engine import Engine

    with Engine(purpose="bench") as engine:
        engine.add_folder(str(PDFS))
        engine.index()
        engine.llm()
        for q in QUESTIONS[:3]:
            engine.ask(q)  # warm: the model's prompt cache and the embedder's arena
        on_s, off_s = engine.settings, dataclasses.replace(engine.settings, monitoring=False)
        times: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
        for r in range(ROUNDS):
            for i, q in enumerate(QUESTIONS):
                order = (True, False) if (r + i) % 2 == 0 else (False, True)
                for on in order:
                    engine.apply_settings(on_s if on else off_s)
                    t = time.perf_counter()
                    engine.ask(q)
                    times[on].setdefault(q, []).append((time.perf_counter() - t) * 1000)
        on_med = {q: statistics.median(v) for q, v in times[True].items()}
        off_med = {q: statistics.median(v) for q, v in times[False].items()}
    ratios = [on_med[q] / off_med[q] for q in QUESTIONS if off_med[q] > 0]
    print("    on ms  off ms  ratio  question")
    for q in QUESTIONS:
        print(f"  {on_med[q]:7.0f} {off_med[q]:7.0f} {on_med[q] / off_med[q]:6.3f}  {q[:60]}")
    return sum(on_med.values()), sum(off_med.values()), statistics.median(ratios)


CHILD = """
import dataclasses, json, sys, time
from pathlib import Path
from sealroom.core.engine import Engine
from sealroom.core.runtime import proctree
on = sys.argv[1] == "on"
with Engine(purpose="bench") as engine:
    engine.apply_settings(dataclasses.replace(engine.settings, monitoring=on,
                          metrics_textfile_dir=sys.argv[3] if on else ""))
    engine.add_folder(sys.argv[2])
    engine.index()
    for q in json.loads(sys.argv[4]):
        engine.ask(q)
    engine.feedback.tick()
    proctree.trim_heap()
    time.sleep(5)  # idle
    print(json.dumps({"rss_mb": proctree.tree_rss() / 2**20}))
"""


def idle_memory(on: bool) -> float:
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as prom:
        env = dict(os.environ, SEALROOM_HOME=home)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, "on" if on else "off", str(PDFS), prom, json.dumps(QUESTIONS[:3])],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rss_mb"])


def main() -> int:
    on_ms, off_ms, ratio = latency()
    print(
        f"ask latency over {len(QUESTIONS)} questions: monitoring on {on_ms:.0f} ms, off {off_ms:.0f} ms "
        f"({on_ms / off_ms:.3f}×; median per-question ratio {ratio:.3f})"
    )
    memory = {on: statistics.median(idle_memory(on) for _ in range(2)) for on in (False, True)}
    print(f"idle memory (process tree): on {memory[True]:.0f} MB, off {memory[False]:.0f} MB")
    rows = [
        Row(
            "ask latency over the questions (ms), tracing and metrics on vs off",
            on_ms,
            off_ms,
            "ms",
            1.02,
            False,
        ),
        Row(
            f"idle memory with tracing and metrics (MB) vs off + {MEMORY_MARGIN_MB} MB",
            memory[True],
            memory[False] + MEMORY_MARGIN_MB,
            "MB",
            1.0,
            False,
        ),
    ]
    write(
        "monitoring.json",
        rows,
        median_question_ratio=ratio,
        memory_mb={"on": memory[True], "off": memory[False]},
    )
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
