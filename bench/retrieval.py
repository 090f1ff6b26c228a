"""Retrieval quality on the eval set: is a passage holding the expected fact, from the expected file,
among the first 5 hits? Used by bench/baselines.py to show that faster indexing kept its quality.

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/retrieval.py [--chunk 200 --overlap 40] [--shipped]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "bench" / "eval" / "corpus.jsonl"
CORPUS = ROOT / "tests" / "corpus"


def questions() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [q for q in rows if not q.get("unanswerable") and q.get("answers") and q.get("source")]


def found(hits: list[Any], q: dict[str, Any]) -> int | None:
    """Rank (1-based) of the first hit from the expected file that holds an expected answer."""
    patterns = [re.compile(a, re.IGNORECASE) for a in q["answers"]]
    for rank, hit in enumerate(hits, 1):
        if Path(hit.path).name == q["source"] and any(p.search(" ".join(hit.text.split())) for p in patterns):
            return rank
    return None


def quality(engine: Any, k: int = 5) -> dict[str, float]:
    """hit@k and MRR@k of hybrid search, and hit@k of the vectors alone, over the answerable questions."""
    from sealroom.core.answer.retriever import Hit

    qs = questions()
    hybrid: list[int | None] = []
    dense: list[int | None] = []
    for q in qs:
        hybrid.append(found(engine.search(q["question"], k=k), q))
        vector = engine.parts.store.query(engine.parts.embedder.embed([q["question"]])[0], k * 3)
        chunks = engine.catalog.chunks_by_id([cid for cid, _ in vector])
        owners = engine.catalog.files_for_content(c.sha256 for c in chunks.values())
        ranked: list[Hit] = []
        for cid, _ in vector:
            chunk = chunks.get(cid)
            rows = owners.get(chunk.sha256, []) if chunk else []
            if chunk and rows and all(h.text != chunk.text for h in ranked):
                ranked.append(Hit.of_chunk(chunk, rows[0].path, 0))
        dense.append(found(ranked[:k], q))
    n = len(qs)
    return {
        "questions": n,
        "hit_at_5": round(sum(r is not None for r in hybrid) / n, 3),
        "mrr_at_5": round(sum(1 / r for r in hybrid if r) / n, 3),
        "vector_hit_at_5": round(sum(r is not None for r in dense) / n, 3),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--chunk", type=int, default=None)
    p.add_argument("--overlap", type=int, default=None)
    p.add_argument("--shipped", action="store_true", help="run the shipped model file, not the derived one")
    args = p.parse_args()
    from sealroom.core.engine import Engine
    from sealroom.core.runtime.config import load_settings

    settings = load_settings()
    if args.chunk:
        settings.chunk_tokens = args.chunk
    if args.overlap is not None:
        settings.chunk_overlap = args.overlap
    with Engine(purpose="bench retrieval", settings=settings) as engine:
        if args.shipped:
            from sealroom.models.embedding import OnnxEmbedder

            engine.parts.use_embedder(OnnxEmbedder(threads=settings.n_threads))
            engine.parts.embedder.warm_up()
        engine.add_folder(str(CORPUS))
        started = time.perf_counter()
        summary = engine.index()
        seconds = time.perf_counter() - started
        result = {
            "model": engine.parts.embedder.model_id,
            "chunk_tokens": settings.chunk_tokens,
            "overlap": settings.chunk_overlap,
            "chunks": summary.chunks,
            "index_seconds": round(seconds, 1),
            **quality(engine),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
