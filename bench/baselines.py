"""Sealroom's indexing against the usual tutorial pipeline, in one process, on the PDF samples (issue 11).

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/baselines.py [--json bench/results/baselines.json]

Three runs, the same embedding model for all (loaded before any clock starts):
1. `sealroom index` as the engine runs it (parse in worker processes, per-page chunks, embed, store);
2. the naive pipeline: pypdf page by page → 1,000-character chunks with 200 overlap → the same
   embedder in batches of 32 → `collection.add` into a fresh on-disk Chroma;
3. embedding Sealroom's own chunk texts and nothing else (the ceiling of run 1).
Prints a table (figure, Sealroom, baseline, ratio, goal, met?) and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PDFS = ROOT / "tests" / "corpus" / "pdf-samples"


def naive(embedder: object, store_dir: Path) -> tuple[float, int, int]:
    """(seconds, pages, chunks) of the tutorial pipeline."""
    import logging

    import chromadb
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings, as the tutorial would ignore them

    started = time.perf_counter()
    client = chromadb.PersistentClient(
        path=str(store_dir), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection("naive", embedding_function=None)
    pages = chunks = 0
    texts: list[str] = []
    for path in sorted(PDFS.rglob("*.pdf")):
        try:
            reader = pypdf.PdfReader(str(path))
            if reader.is_encrypted:
                continue
            for page in reader.pages:
                text = page.extract_text() or ""
                pages += 1
                for start in range(0, max(1, len(text)), 800):
                    piece = text[start : start + 1000]
                    if piece.strip():
                        texts.append(piece)
        except Exception:
            continue
    for i in range(0, len(texts), 32):
        batch = texts[i : i + 32]
        vectors = embedder.embed(batch)  # type: ignore[attr-defined]
        collection.add(
            ids=[f"c{i + j}" for j in range(len(batch))],
            embeddings=vectors,
            documents=batch,
        )
        chunks += len(batch)
    return time.perf_counter() - started, pages, chunks


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "baselines.json"))
    args = p.parse_args()
    from sealroom.core.engine import Engine
    from sealroom.core.indexer import embedding_text

    rows = []
    with Engine(purpose="bench baselines") as engine:
        engine.add_folder(str(PDFS))
        embedder = engine.embedder
        embedder.warm_up()
        engine.store  # noqa: B018 - Chroma open before the clock
        started = time.perf_counter()
        summary = engine.index()
        sealroom_s = time.perf_counter() - started
        texts = [
            embedding_text(c.heading, c.text).encode("utf-8", "replace").decode("utf-8")
            for batch in engine.catalog.all_chunks()
            for c in batch
        ]
        started = time.perf_counter()
        for i in range(0, len(texts), 32):
            embedder.embed(texts[i : i + 32])
        embed_only_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            naive_s, naive_pages, naive_chunks = naive(embedder, Path(tmp))
    s_rate, n_rate = summary.pages / sealroom_s, naive_pages / naive_s
    rows.append(("index pages/s (PDF samples)", s_rate, n_rate, 1.5, "≥"))
    rows.append(("embedder kept busy (embed-only s / index s)", embed_only_s / sealroom_s, 1.0, 0.9, "≥"))
    table = {
        "machine": f"{os.cpu_count()} cores",
        "sealroom": {"seconds": round(sealroom_s, 1), "pages": summary.pages, "chunks": summary.chunks},
        "naive": {"seconds": round(naive_s, 1), "pages": naive_pages, "chunks": naive_chunks},
        "embed_only_seconds": round(embed_only_s, 1),
        "rows": [
            {
                "figure": name,
                "sealroom": round(ours, 3),
                "baseline": round(base, 3),
                "ratio": round(ours / base, 3),
                "goal": f"{op} {goal}×",
                "met": ours / base >= goal,
            }
            for name, ours, base, goal, op in rows
        ],
    }
    print(f"{'figure':<46} {'Sealroom':>9} {'baseline':>9} {'ratio':>7} {'goal':>7}  met?")
    for r in table["rows"]:
        print(
            f"{r['figure']:<46} {r['sealroom']:>9.2f} {r['baseline']:>9.2f} {r['ratio']:>6.2f}× {r['goal']:>7}  "
            f"{'yes' if r['met'] else 'no'}"
        )
    print(json.dumps({k: table[k] for k in ("sealroom", "naive", "embed_only_seconds")}))
    Path(args.json).write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
