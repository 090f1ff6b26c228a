"""What a smaller token-embedding table in the default chat model would buy, and cost (issue 11).

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/compact_model.py

Not used by Sealroom: this measures an option for the team. Gemma 3 270M's Q4_K_M file keeps its
262,144 x 640 token-embedding table in Q8_0 (170 MB of its 235 MB of weights), and the model reads all
of it for every token (the output layer is tied to it). The bench derives a copy in which only that
table is Q5_0 (the type the file already uses for its other 640-wide tensors; K-quants need rows of
256), every other tensor copied as it is, then for the shipped file and the copy, each in Sealroom's
own model process:
- the model process's resident memory after answering (anon and file pages);
- tokens/s of greedy generation on five prompts;
- the answers eval set (bench/eval/corpus.jsonl) through the real pipeline on the sample corpus.
Results: bench/results/compact_model.json (not a goals row).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import re
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
GGML_Q5_0 = 6


def derive(source: Path, target: Path) -> None:
    """A copy of `source` with token_embd.weight in Q5_0 and every other tensor as it was."""
    import llama_cpp as lib

    from sealroom.models.gguf import read_gguf

    before = read_gguf(source).tensor_types
    types = {**before, "token_embd.weight": GGML_Q5_0}
    overrides = (lib.llama_model_tensor_override * (len(types) + 1))()
    patterns = [("^" + re.escape(name) + "$").encode() for name in types]
    for i, (pattern, kind) in enumerate(zip(patterns, types.values(), strict=True)):
        overrides[i].pattern, overrides[i].type = pattern, kind
    params = lib.llama_model_quantize_default_params()
    params.nthread = 2
    params.ftype = lib.LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.allow_requantize = True
    params.token_embedding_type = params.output_tensor_type = GGML_Q5_0
    params.tt_overrides = ctypes.cast(overrides, ctypes.POINTER(lib.llama_model_tensor_override))
    if lib.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise SystemExit("llama_model_quantize failed")
    changed = {n for n, t in read_gguf(target).tensor_types.items() if before[n] != t}
    assert changed == {"token_embd.weight"}, changed


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
    from sealroom.core import evaluate
    from sealroom.core.engine import Engine
    from sealroom.models.catalogue import ModelCatalogue

    questions = evaluate.load_questions(QUESTIONS)
    rows: dict[str, dict[str, Any]] = {}
    with Engine(purpose="bench compact model") as engine:
        shipped = Path(ModelCatalogue(engine.home).default().path)
        compact = engine.home / "models" / "gemma-3-270m-embd-q5_0.gguf"
        derive(shipped, compact)
        for sub in ("pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(str(CORPUS / sub))
        engine.index()
        for name, path in (("shipped", shipped), ("compact", compact)):
            row: dict[str, Any] = {"size_mb": round(path.stat().st_size / 2**20, 1), **model_process(path)}
            engine.apply_settings(dataclasses.replace(engine.settings, chat_model=str(path)))
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
