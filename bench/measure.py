"""Measure indexing throughput, search latency and answer speed on the shared corpus.

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/measure.py [--questions N]

Prints real figures from this machine; nothing is compared to a baseline yet.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sealroom.core.engine import Engine

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"
QUERIES = [
    "wirewound potentiometer power rating",
    "Homöomorphismus Topologie",
    "annotations in a PDF",
    "Arabic text",
    "multicolumn layout",
    "email attachment",
    "form fields",
    "table of contents outline",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=3)
    args = parser.parse_args()
    with Engine(purpose="bench") as engine:
        for sub in ("pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(str(CORPUS / sub))
        engine.parts.embedder  # noqa: B018 - load the model before the clock starts
        engine.parts.store  # noqa: B018
        started = time.perf_counter()
        summary = engine.index()
        seconds = time.perf_counter() - started
        print(
            f"index: {summary.files} files, {summary.pages} pages, {summary.chunks} chunks in {seconds:.1f} s "
            f"= {summary.pages / seconds:.1f} pages/s, {summary.chunks / seconds:.1f} chunks/s"
        )
        latencies = []
        for _ in range(5):
            for query in QUERIES:
                t = time.perf_counter()
                engine.search(query)
                latencies.append((time.perf_counter() - t) * 1000)
        print(
            f"search: n={len(latencies)} p50 {statistics.median(latencies):.1f} ms, "
            f"p95 {percentile(latencies, 0.95):.1f} ms"
        )
        engine.llm()
        ttft, rates = [], []
        for question in [
            "What is the power rating of the wirewound potentiometer?",
            "What is the diameter of the potentiometer?",
            "What is a Homöomorphismus?",
        ][: args.questions]:
            answer = engine.ask(question)
            if answer.called_model and "first_token_ms" in answer.timings:
                ttft.append(answer.timings["first_token_ms"])
                if "tokens_per_s" in answer.timings:
                    rates.append(answer.timings["tokens_per_s"])
        if ttft:
            print(
                f"ask (model loaded): time to first token p50 {statistics.median(ttft):.0f} ms over {len(ttft)}; "
                f"{statistics.median(rates) if rates else 0:.1f} tokens/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
