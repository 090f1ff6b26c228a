"""The LLM subprocess: one llama.cpp model, one request at a time, JSON lines over stdio.

llama.cpp is not thread-safe and a GGML_ASSERT aborts the whole process, so the model
lives here and nowhere else. Requests (one JSON object a line on stdin):
  {"op": "load", "path", "n_ctx", "n_threads"}  -> {"event": "loaded", "n_ctx", "chat_template"}
  {"op": "count", "texts": [...]}                 -> {"event": "counts", "counts": [...]}
  {"op": "generate", "prompt" | "messages", "max_tokens", "stop"}
        -> {"event": "token", "text"}* then {"event": "done", "finish_reason", "tokens"}
  {"op": "cancel"}  stops the generation under way (answered by its "done").
Failures answer {"event": "error", "message"}.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO


def _send(out: TextIO, **payload: Any) -> None:
    out.write(json.dumps(payload, ensure_ascii=False) + "\n")
    out.flush()


@contextlib.contextmanager
def without_repacking() -> Iterator[None]:
    """Models loaded inside this block keep their weights as the file has them, with no second copy.

    llama.cpp copies the weights it can use faster into a second, "repacked" buffer (the default
    model's Q4_K tensors: 12.7 MB; on CPUs with AMX, 214 MB) and keeps the mapped originals resident
    too. Without the copy the model process holds 12 MB less, and the first token and tokens/s stay
    within noise (measured, default model, 2 cores). It also avoids llama.cpp's AMX path, which
    crashes (SIGSEGV) on the compact default model's Q5_0 token table (models/compact.py; seen on a
    2-core AMX machine). Llama() takes no option for it: its model parameters come from
    `llama_model_default_params`, which answers with repacking off inside this block."""
    import llama_cpp

    lib = getattr(llama_cpp, "llama_cpp", None)
    defaults = getattr(lib, "llama_model_default_params", None)

    def params() -> Any:
        made = defaults()  # type: ignore[misc]
        made.use_extra_bufts = False
        return made

    if defaults is not None:
        lib.llama_model_default_params = params  # type: ignore[union-attr]
    try:
        yield
    finally:
        if defaults is not None:
            lib.llama_model_default_params = defaults  # type: ignore[union-attr]


def _load(path: str, n_ctx: int, threads: int) -> Any:
    from llama_cpp import Llama

    with without_repacking():
        return Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            # The compute buffer is sized for one micro-batch: 128 tokens instead of 512 keeps ~21 MB
            # less resident after an answer, for ~3% more time to the first token on a 1,500-token
            # prompt (measured, default model, 2 cores). Flash attention with an 8-bit KV cache would
            # save 17 MB more but made that first token 65% slower.
            n_batch=128,
            n_ubatch=128,
            verbose=False,
        )


def _sealed(path: str, sha256: str | None) -> str:
    """The file to load, as a path to the very bytes that were hashed: the file is opened once, hashed
    through that handle, and loaded through it (/proc/self/fd), so swapping the path after the check does
    not swap the model. Raises when the bytes are not the ones the catalogue and the policy allowed."""
    if not sha256:
        return path
    from sealroom.core.runtime.hashing import sha256_of_stream

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=False) as handle:
        got = sha256_of_stream(handle)
    if got != sha256:
        os.close(fd)
        raise ValueError(
            f"{os.path.basename(path)} is not the model the catalogue and the IT policy allowed "
            f"(its sha256 is {got[:16]}…, expected {sha256[:16]}…): refusing to load it"
        )
    held = f"/proc/self/fd/{fd}"
    return held if os.path.exists(held) else path  # the fd stays open: the mapping is of these bytes


def main() -> None:
    from sealroom.core.runtime import offline
    from sealroom.core.runtime.priority import MODEL, lower_process

    offline.enforce()  # this process never needs the network either

    lower_process(MODEL)
    out = sys.stdout
    sys.stdout = sys.stderr  # llama.cpp's own chatter must not reach the protocol stream
    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancel = threading.Event()

    def read() -> None:
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("op") == "cancel":
                cancel.set()
            else:
                requests.put(request)
        requests.put(None)

    threading.Thread(target=read, daemon=True).start()
    llm: Any = None
    while (request := requests.get()) is not None:
        op = request["op"]
        try:
            if op == "load":
                threads = request.get("n_threads") or os.cpu_count() or 2
                llm = _load(_sealed(request["path"], request.get("sha256")), request["n_ctx"], threads)
                template = llm.metadata.get("tokenizer.chat_template")
                _send(
                    out,
                    event="loaded",
                    n_ctx=llm.n_ctx(),
                    chat_template=bool(template),
                    repacked=bool(getattr(getattr(llm, "model_params", None), "use_extra_bufts", True)),
                )
            elif op == "count":
                counts = [
                    len(llm.tokenize(t.encode("utf-8"), add_bos=False, special=False))
                    for t in request["texts"]
                ]
                _send(out, event="counts", counts=counts)
            elif op == "generate":
                cancel.clear()
                _generate(llm, request, cancel, out)
            else:
                _send(out, event="error", message=f"unknown op {op}")
        except Exception as exc:  # reported to the engine, which shows it to the user
            _send(out, event="error", message=f"{type(exc).__name__}: {exc}")


def _generate(llm: Any, request: dict[str, Any], cancel: threading.Event, out: TextIO) -> None:
    options = {
        "max_tokens": request["max_tokens"],
        "stop": request.get("stop") or None,
        "temperature": 0.0,
        "top_k": 1,
        "repeat_penalty": 1.1,
        "stream": True,
    }
    if request.get("grammar"):  # the answer is held to a GBNF grammar (a choice among numbers, say)
        from llama_cpp import LlamaGrammar

        options["grammar"] = LlamaGrammar.from_string(request["grammar"], verbose=False)
    if request.get("messages"):
        stream = llm.create_chat_completion(messages=request["messages"], **options)
        pick = lambda chunk: chunk["choices"][0]["delta"].get("content")  # noqa: E731
    else:
        stream = llm.create_completion(prompt=request["prompt"], **options)
        pick = lambda chunk: chunk["choices"][0].get("text")  # noqa: E731
    held = llm.input_ids[: llm.n_tokens].copy()  # what the KV cache holds before this prompt
    tokens = 0
    finish = "stop"
    for chunk in stream:
        if cancel.is_set():
            finish = "cancelled"
            break
        text = pick(chunk)
        if text:
            tokens += 1
            _send(out, event="token", text=text)
        finish = chunk["choices"][0].get("finish_reason") or finish
    _send(
        out,
        event="done",
        finish_reason=finish,
        tokens=tokens,
        reused=_shared(held, llm.input_ids[: llm.n_tokens]),
    )


def _shared(before: Any, after: Any) -> int:
    """How many tokens the prompt shared with what the KV cache held: those were not evaluated again."""
    import numpy as np

    n = min(len(before), len(after))
    differ = np.flatnonzero(before[:n] != after[:n])
    return int(differ[0]) if differ.size else n


if __name__ == "__main__":
    main()
