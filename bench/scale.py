"""Hybrid search at scale (issue 11, goal 3): an index of N passages of real text, p50/p95 of searches.

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/scale.py [--chunks 10000]

The text is real English prose: the Python documentation's topics and the docstrings of the Python
standard library and of the packages installed beside Sealroom, written as text files of 40 passages
each and indexed by Sealroom as any folder is (parse, chunk, commit, embed, store). Embedding 100k
passages takes about an hour on 2 cores, so the vectors are cached by text fingerprint in
~/.cache/sealroom/bench (the second run indexes from the cache). Then 60 questions are searched
(hybrid: vectors + keywords + rare terms, as `sealroom search` and `ask` retrieve), after a warm-up, and
asked up to the evidence (`ask` without the chat model: retrieval plus evidence selection).
Rows go to bench/results/scale.json against the issue's limits (50 ms at 10k, 150 ms at 100k).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import itertools
import re
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from goals import Row, write

CACHE = Path.home() / ".cache" / "sealroom" / "bench"
LIMITS_MS = {10_000: 50.0, 100_000: 150.0}
PER_FILE = 40
SAVE_EVERY = 5000  # vectors computed between saves of the cache
QUERIES = [
    "how to open a file for reading",
    "difference between a list and a tuple",
    "regular expression groups",
    "what happens when an exception is raised",
    "thread safety of a queue",
    "decimal rounding mode",
    "parse command line arguments",
    "convert a string to bytes",
    "time zone aware datetime",
    "garbage collection of cycles",
    "context manager protocol",
    "iterator and generator",
    "sort order key",
    "socket timeout",
    "read a CSV file",
    "compress data with zlib",
    "hash of a password",
    "random seed",
    "matrix multiplication",
    "sparse matrix",
    "unicode normalization",
    "environment variables",
    "subprocess output",
    "temporary directory",
    "logging level",
    "unit test assertion",
    "json encoding",
    "path of the current working directory",
    "symbolic integration",
    "polynomial roots",
    "fourier transform",
    "signal handler",
    "memory view of a buffer",
    "abstract base class",
    "dataclass fields",
    "keyword arguments",
    "default values of parameters",
    "import a module by name",
    "weak references",
    "copy a nested dictionary",
    "format a floating point number",
    "walk a directory tree",
    "file permissions",
    "SSL certificate verification",
    "HTTP request headers",
    "email message attachments",
    "XML parsing",
    "SQLite transactions",
    "pickle security",
    "coroutine and event loop",
    "locale settings",
    "integer division",
    "bit manipulation",
    "array broadcasting",
    "linear algebra eigenvalues",
    "widget layout",
    "event handling in a window",
    "database index",
    "embedding vectors",
    "cosine distance",
]


DOC_TREES = [  # Debian's packages python3.11-doc and linux-doc-6.1 (reStructuredText sources), when installed
    Path("/usr/share/doc/python3.11/html/_sources"),
    Path("/usr/share/doc/linux-doc-6.1/Documentation"),
]
RST_NOISE = re.compile(r"^\s*(\.\. .*|[=\-~^*#+`'\".:_]{4,})\s*$", re.M)


def _rst_files() -> Iterator[str]:
    for tree in DOC_TREES:
        for path in sorted(tree.rglob("*.rst*")) if tree.is_dir() else []:
            try:
                raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            except (OSError, EOFError, gzip.BadGzipFile):
                continue
            yield RST_NOISE.sub("", raw.decode("utf-8", "replace"))


MAN_ESCAPE = re.compile(r"\\f(\[[A-Z]*\]|[BIRPC])|\\\(..|\\[&e|^%]|\\s[-+]?\d")


def _man_pages() -> Iterator[str]:
    """English manual pages (roff) as plain text: macro lines give their words, font escapes go."""
    for path in sorted(Path("/usr/share/man").glob("man*/*.gz")):
        try:
            raw = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        lines = []
        for line in raw.splitlines():
            if line.startswith((".", "'")):
                macro, _, rest = line[1:].partition(" ")
                if macro in {"SH", "SS"}:
                    lines += ["", rest.strip('"'), ""]
                elif macro in {"PP", "P", "LP", "TP", "IP"}:
                    lines.append("")
                elif macro in {"B", "I", "BR", "IR", "RB", "RI", "BI", "IB"}:
                    lines.append(rest.replace('"', ""))
                continue
            lines.append(line)
        yield MAN_ESCAPE.sub("", "\n".join(lines).replace("\\-", "-"))


def _docstrings() -> Iterator[str]:
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "test" in path.parts or path.stat().st_size > 2_000_000:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc and len(doc) > 200:
                        yield doc


def prose(limit_chars: int) -> Iterator[str]:
    """Texts of real documentation, until `limit_chars` of it (or all there is): the Python
    documentation's topics, then (if installed) the Python and Linux kernel manuals' sources, then the
    docstrings of the standard library and of the packages installed beside Sealroom, then the manual
    pages in /usr/share/man."""
    import pydoc_data.topics as topics

    total = 0
    for text in itertools.chain(topics.topics.values(), _rst_files(), _docstrings(), _man_pages()):
        yield text
        total += len(text)
        if total >= limit_chars:
            return


def passages(n: int) -> list[str]:
    """n distinct passages of about 600 characters."""
    seen: set[str] = set()
    result: list[str] = []
    for text in prose(n * 700):
        for piece in re.split(r"\n\s*\n", text):
            piece = " ".join(piece.split())
            while len(piece) > 80:
                part, piece = piece[:600], piece[600:]
                if part not in seen:
                    seen.add(part)
                    result.append(part)
                    if len(result) == n:
                        return result
    return result


class CachedEmbedder:
    """Sealroom's embedder with its vectors kept by text fingerprint between runs."""

    def __init__(self, inner: Any, file: Path) -> None:
        self.inner, self.file = inner, file
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self.vectors: dict[str, np.ndarray] = {}
        if file.is_file():
            data = np.load(file)
            self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        self.computed = self.saved = 0

    def warm_up(self) -> None:
        self.inner.warm_up()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def release_memory(self) -> None:
        self.inner.release_memory()

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()[:24] for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in self.vectors]
        if todo:
            fresh = self.inner.embed([texts[i] for i in todo])
            for row, i in enumerate(todo):
                self.vectors[keys[i]] = fresh[row]
            self.computed += len(todo)
            if self.computed - self.saved >= SAVE_EVERY:  # an hour's work is not lost to a stop
                self.save()
        return (
            np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dimension), np.float32)
        )

    def save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        tmp = self.file.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.file)
        self.saved = self.computed


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--chunks", type=int, default=10_000)
    args = p.parse_args()
    from sealroom.core.engine import Engine

    # Sealroom's chunker joins these ~600-character texts into passages of up to 200 tokens: about 2.7 of
    # them make one passage (measured), so that many are written for the passage count asked for
    texts = passages(int(args.chunks * 2.7))
    if len(texts) < int(args.chunks * 2.7):  # not enough text here: the row would be for a smaller index
        print(
            f"only {len(texts):,} texts of documentation on this machine, {int(args.chunks * 2.7):,} needed for "
            f"{args.chunks:,} passages: install Debian's python3.11-doc and linux-doc-6.1 (make bench-scale does)"
        )
        return 1
    with tempfile.TemporaryDirectory() as tmp, Engine(purpose="bench scale") as engine:
        root = Path(tmp) / "docs"
        for start in range(0, len(texts), PER_FILE):
            folder = root / f"d{start // (PER_FILE * 100):03d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"doc-{start // PER_FILE:05d}.txt").write_text(
                "\n\n".join(texts[start : start + PER_FILE])
            )
        cached = CachedEmbedder(
            engine.parts.embedder, CACHE / f"scale-{engine.parts.embedder.model_id.replace('@', '-')}.npz"
        )
        engine.parts.use_embedder(cached)
        engine.add_folder(str(root))
        started = time.perf_counter()
        summary = engine.index()
        index_s = time.perf_counter() - started
        if cached.computed > cached.saved:
            cached.save()
        chunks = engine.catalog.chunk_count()
        print(
            f"{chunks:,} passages in {summary.files:,} files indexed in {index_s:.0f} s "
            f"({cached.computed:,} embedded, the rest from the cache)"
        )
        engine.parts.use_embedder(cached.inner)  # questions are embedded for real, not from the cache
        for q in QUERIES[:5]:
            engine.search(q)
        times = []
        for q in QUERIES:
            started = time.perf_counter()
            hits = engine.search(q)
            times.append((time.perf_counter() - started) * 1000)
            assert hits, f"no hits for {q!r}"
        # `ask` up to the evidence on screen (retrieval, relevance, evidence sentences chosen and
        # ranked); stopped there, so the chat model is not loaded: its time is answer_latency.py's
        pipeline, stopped = engine.pipeline(), threading.Event()
        stopped.set()
        ask_times = [pipeline.run(q, stop=stopped).timings["first_text_ms"] for q in QUERIES]
    times.sort()
    ask_times.sort()
    p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
    ask50, ask95 = statistics.median(ask_times), ask_times[int(0.95 * (len(ask_times) - 1))]
    print(
        f"hybrid search over {chunks:,} passages: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(times)} questions)"
    )
    print(f"ask up to the evidence: p50 {ask50:.1f} ms, p95 {ask95:.1f} ms")
    scale = min(LIMITS_MS, key=lambda n: abs(n - chunks))
    write(
        f"scale-{scale // 1000}k.json",
        [
            Row(
                f"hybrid search p95 at {chunks:,} passages vs limit",
                p95,
                LIMITS_MS[scale],
                "ms",
                1.0,
                higher_is_better=False,
            )
        ],
        chunks=chunks,
        files=summary.files,
        index_seconds=round(index_s, 1),
        embedded_now=cached.computed,
        search_ms={"p50": round(p50, 1), "p95": round(p95, 1), "all": [round(t, 1) for t in times]},
        ask_evidence_ms={"p50": round(ask50, 1), "p95": round(ask95, 1)},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
