"""The chat model as Sealroom runs it against raw llama-cpp-python on the identical prompt (issue 11, goal 4).

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/answer_latency.py

Indexes the PDF samples, asks the questions below through Sealroom (the prompt built by Sealroom, the
model in its worker process), recording each prompt, the time to its first token and the tokens/s after
it. Then, in this process, raw `llama_cpp.Llama` on the same model file (loaded without a repacked copy
of the weights, as the worker loads it), with the same context, threads and sampling, runs the same
prompts in the same order: its KV cache reuses the common prefix (the fixed rules) exactly as the
worker's does. A third pass resets the cache before every prompt, which shows what the
prefix reuse buys. Rows go to bench/results/answer_latency.json (see bench/goals.py).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from goals import Row, write

ROOT = Path(__file__).resolve().parents[1]
PDFS = ROOT / "tests" / "corpus" / "pdf-samples"
QUESTIONS = [
    "What is a Homöomorphismus?",
    "What does the example document say is better than ugly?",
    "What is the title of the four-page pdflatex document?",
    "What is a topologischer Raum?",
    "What does the Zen of Python say about errors?",
    "What is the definition of a metrischer Raum?",
]
# ... and the eval set's questions about the PDF samples: only some reach the model (others are answered by
# the quotes alone or declined), and three timings made a median that moved ±15% between runs
QUESTIONS += [
    row["question"]
    for row in map(json.loads, (ROOT / "bench" / "eval" / "corpus.jsonl").read_text().splitlines())
    if row.get("source", "").endswith(".pdf") and row["question"] not in QUESTIONS
]
OPTIONS = {"temperature": 0.0, "top_k": 1, "repeat_penalty": 1.1}


def timed(stream: Any, pick: Any) -> tuple[float, float, int]:
    """(seconds to the first token, tokens/s after it, tokens) of a stream of pieces."""
    started = time.perf_counter()
    first = None
    tokens = 0
    for piece in stream:
        if pick(piece):
            tokens += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    if first is None:
        return end - started, 0.0, 0
    return first - started, (tokens - 1) / (end - first) if tokens > 1 and end > first else 0.0, tokens


def main() -> int:
    from sealroom.core.engine import Engine

    records: list[dict[str, Any]] = []
    with Engine(purpose="bench answer latency") as engine:
        engine.add_folder(str(PDFS))
        engine.index()
        llm = engine.llm()
        plain_generate = llm.generate

        def recording(
            prompt: str | None = None,
            messages: Any = None,
            max_tokens: int = 256,
            stop: Any = None,
            **kw: Any,
        ) -> Any:
            record = {"prompt": prompt, "messages": messages, "max_tokens": max_tokens, "stop": stop}
            records.append(record)
            ttft, rate, tokens = timed(plain_generate(prompt, messages, max_tokens, stop, **kw), bool)
            record.update(ttft=ttft, rate=rate, tokens=tokens)
            return iter([])  # the answer itself is not needed here; its timing is

        llm.generate = recording  # type: ignore[method-assign]
        for question in QUESTIONS:
            engine.ask(question)
        model_path = str(llm.model_path)  # type: ignore[attr-defined]
        n_ctx, threads = engine.settings.n_ctx, engine.settings.n_threads or os.cpu_count() or 2
        engine.unload_model()
    asked = [r for r in records if "ttft" in r]
    if not asked:
        print("no question reached the model (every one was answered from evidence alone or declined)")
        return 1

    from llama_cpp import Llama

    from sealroom.models.llm_worker import without_repacking

    # llama-cpp-python's defaults for the rest, with the weights loaded as Sealroom's model process
    # loads them (no repacked copy: llama.cpp's AMX repacking crashes on the compact default model)
    with without_repacking():
        raw = Llama(
            model_path=model_path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
        )

    def run(record: dict[str, Any]) -> tuple[float, float, int]:
        if record["messages"]:
            stream = raw.create_chat_completion(
                messages=record["messages"], max_tokens=record["max_tokens"], stream=True, **OPTIONS
            )
            return timed(stream, lambda c: c["choices"][0]["delta"].get("content"))
        stream = raw.create_completion(
            prompt=record["prompt"],
            max_tokens=record["max_tokens"],
            stop=record["stop"],
            stream=True,
            **OPTIONS,
        )
        return timed(stream, lambda c: c["choices"][0].get("text"))

    # The worker evaluated the prompts' shared start when it loaded (Engine.llm): raw gets the same by
    # running the last prompt first, which shares only that start with the first one.
    run(asked[-1])
    warm = [run(r) for r in asked]
    cold = []
    for r in asked:
        raw.reset()
        cold.append(run(r))

    raw.close()  # now, not at interpreter exit (llama-cpp-python's finaliser then finds its library gone)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    s_ttft, r_ttft, c_ttft = (
        med([r["ttft"] for r in asked]),
        med([w[0] for w in warm]),
        med([c[0] for c in cold]),
    )
    s_rate = med([r["rate"] for r in asked if r["rate"]])
    r_rate = med([w[1] for w in warm if w[1]])
    rows = [
        Row(
            "answer: time to first token vs raw llama-cpp-python (median)",
            s_ttft * 1000,
            r_ttft * 1000,
            "ms",
            1.2,
            higher_is_better=False,
        ),
        Row("answer: tokens/s vs raw llama-cpp-python (median)", s_rate, r_rate, "tok/s", 0.9),
        Row(
            "  prompt-prefix KV reuse: first token with it vs without (raw)",
            r_ttft * 1000,
            c_ttft * 1000,
            "ms",
            1.0,
            higher_is_better=False,
        ),
    ]
    write(
        "answer_latency.json",
        rows,
        model=Path(model_path).name,
        questions=len(asked),
        sealroom=[{k: round(r[k], 3) for k in ("ttft", "rate")} | {"tokens": r["tokens"]} for r in asked],
        raw_warm=[{"ttft": round(w[0], 3), "rate": round(w[1], 2), "tokens": w[2]} for w in warm],
        raw_cold=[{"ttft": round(c[0], 3), "rate": round(c[1], 2), "tokens": c[2]} for c in cold],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
