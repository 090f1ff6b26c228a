"""The engine's side of the LLM worker process: load, count tokens, stream, cancel."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sealroom.core.runtime.errors import ModelError
from sealroom.core.runtime.workers import worker_command

from .gguf import read_gguf


class LlmWorker:
    """A model loaded in its own process. Calls are serialised; `cancel()` may come from any thread."""

    def __init__(
        self,
        model_path: Path,
        n_ctx: int = 2048,
        n_threads: int = 0,
        log_path: Path | None = None,
        sha256: str | None = None,
    ):
        self.model_path = model_path
        self.sha256 = sha256  # the worker loads the file only if its bytes hash to this
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.log_path = log_path
        self.has_chat_template = False
        self.weights_repacked = False  # a second copy of some weights (see llm_worker._load)
        self.finish_reason = "stop"
        self.prompt_reused = 0  # tokens of the last prompt found in the KV cache (not evaluated again)
        self._proc: subprocess.Popen[str] | None = None
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0

    # --- life cycle -------------------------------------------------------------------
    def warm_up(self, timeout: float = 180.0) -> None:
        """Start the process and load the model (a ModelError says why it could not)."""
        with self._lock:
            if self._proc and self._proc.poll() is None:
                return
            info = read_gguf(self.model_path)  # catches truncated and foreign files first
            self.has_chat_template = info.chat_template is not None
            stderr = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
            self._events = queue.Queue()
            self._proc = subprocess.Popen(
                worker_command("sealroom.models.llm_worker"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
            )
            threading.Thread(target=self._read, args=(self._proc,), daemon=True).start()
            self._send(
                op="load",
                path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                sha256=self.sha256,
            )
            reply = self._next(timeout)
            if reply["event"] != "loaded":
                self._stop_process()
                raise ModelError(f"could not load {self.model_path.name}: {reply.get('message', reply)}")
            self.n_ctx = int(reply["n_ctx"])
            self.weights_repacked = bool(reply.get("repacked", True))

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._events.put(json.loads(line))
        self._events.put(None)

    def _send(self, **request: Any) -> None:
        assert self._proc and self._proc.stdin
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ModelError(
                "the model process stopped unexpectedly; it restarts on the next question"
            ) from None

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            self._stop_process()
            raise ModelError(f"the model did not answer within {timeout:g} s") from None
        if event is None:
            code = self._proc.wait() if self._proc else None
            self._proc = None
            raise ModelError(
                f"the model process crashed (exit code {code}); it restarts on the next question"
            )
        return event

    def _stop_process(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        with self._lock:
            if self._proc and self._proc.stdin:
                try:
                    self._proc.stdin.close()
                    self._proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._stop_process()

    # --- requests ---------------------------------------------------------------------
    def count_tokens(self, texts: list[str]) -> list[int]:
        self.warm_up()
        with self._lock:
            self._send(op="count", texts=texts)
            reply = self._next(60)
        if reply["event"] != "counts":
            raise ModelError(f"token count failed: {reply.get('message')}")
        return [int(n) for n in reply["counts"]]

    def generate(
        self,
        prompt: str | None = None,
        messages: list[dict[str, str]] | None = None,
        max_tokens: int = 256,
        stop: list[str] | None = None,
        token_timeout: float = 120.0,
        grammar: str | None = None,
    ) -> Iterator[str]:
        """Yield text pieces as the model produces them; `finish_reason` is set at the end. `grammar` (GBNF)
        holds the output to what it allows."""
        self.warm_up()
        with self._lock:
            self._generation += 1
            self.finish_reason = "stop"
            self._send(
                op="generate",
                prompt=prompt,
                messages=messages,
                max_tokens=max_tokens,
                stop=stop,
                grammar=grammar,
            )
            while True:
                event = self._next(token_timeout)
                if event["event"] == "token":
                    yield event["text"]
                elif event["event"] == "done":
                    self.finish_reason = event["finish_reason"]
                    self.prompt_reused = int(event.get("reused", 0))
                    return
                else:
                    raise ModelError(f"generation failed: {event.get('message')}")

    def cancel(self) -> None:
        """Stop the generation under way, from any thread, without waiting for it.

        A worker that has not stopped 2 s later is killed (it is restarted on the next call).
        """
        proc = self._proc
        if not proc or proc.poll() is not None or not self._lock.locked():
            return
        try:
            assert proc.stdin
            proc.stdin.write(json.dumps({"op": "cancel"}) + "\n")
            proc.stdin.flush()
        except (OSError, AssertionError, ValueError):
            return
        generation = self._generation

        def enforce() -> None:
            if self._lock.locked() and self._generation == generation and proc.poll() is None:
                proc.kill()

        timer = threading.Timer(2.0, enforce)
        timer.daemon = True
        timer.start()
