"""Team mode's chat model: a GGUF that IT runs behind llama.cpp's OpenAI-compatible server.

`python -m llama_cpp.server --model X --host H --port P` serves completions and chat completions
(streamed as server-sent events), and its extras tokenize. `ServerGenerator` is the `Generator`
(core/protocols.py) over that API, so the answer pipeline stays what it is: the evidence is picked and
every generated sentence verified here, on the client; only the phrasing comes from the server.

Sampling is the local model's (models/llm_worker.py: temperature 0, top_k 1, repeat penalty 1.1), so a
server running the same file answers with the same text. What the API does not tell: the server's
context size and whether its model has a chat template (llama_cpp.server falls back to a generic chat
format for a model without one), so both come with the server's address, as IT configures it.

Standard library only (http.client). The socket guard (core/runtime/offline.py) lets loopback through;
any other host must be in the IT policy's `allowed_hosts`, else it is refused before a name is resolved.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from sealroom.core.runtime import offline
from sealroom.core.runtime.errors import ModelError

#: the local worker's sampling (models/llm_worker.py `_generate`), so the same file gives the same text
SAMPLING = {"temperature": 0.0, "top_k": 1, "repeat_penalty": 1.1}

#: the server's reasons as the local generator names them ("stop", "length"; "cancelled" is ours)
FINISH = {"stop": "stop", "length": "length"}


class ServerUnreachable(ModelError):
    """The model server does not answer at its address (not started, stopped, or the wrong port)."""


class ServerRefused(ModelError):
    """The model server may not be used: a host the IT policy does not allow, or a wrong API key."""


class ServerGenerator:
    """The chat model behind a llama_cpp.server. Calls are serialised; `cancel()` may come from any thread."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,  # the longest wait for the next piece of an answer (a long prompt first)
        connect_timeout: float = 3.0,
        n_ctx: int = 2048,  # the server's --n_ctx: its API does not say it
        has_chat_template: bool = False,  # whether the served model has its own chat template
        allowed_hosts: Iterable[str] = (),  # the IT policy's allowed_hosts
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelError(f"the model server address {base_url!r} is not an http(s) URL")
        self.base_url = base_url.strip().rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        prefix = parts.path.rstrip("/")
        self._prefix = prefix[: -len("/v1")] if prefix.endswith("/v1") else prefix
        self.api_key, self.model = api_key, model
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.n_ctx = n_ctx
        self.has_chat_template = has_chat_template
        self.finish_reason = "stop"
        self._allowed = {h.casefold() for h in allowed_hosts}
        self._lock = threading.Lock()
        self._streaming: socket.socket | None = None  # the socket of the answer under way
        self._cancelled = threading.Event()
        self._active = False  # an answer is under way (cancel() has something to stop)
        self._bos: int | None = None  # tokens the server's tokenize adds to any text (its BOS)

    # --- connections ------------------------------------------------------------------
    def _check_host(self) -> None:
        """Loopback, or a host the policy lists (its addresses then pass the socket guard)."""
        try:
            admitted = offline.admit(self._host, self._port, self._allowed)
        except OSError as exc:
            raise ServerUnreachable(
                f"the model server's name '{self._host}' does not resolve ({exc}); check the address"
            ) from None
        if not admitted:
            raise ServerRefused(
                f"the model server {self.base_url} is on another machine and '{self._host}' is not in the IT "
                "policy's allowed_hosts: Sealroom connects to no other machine unless IT lists it"
            )

    def _connect(self) -> http.client.HTTPConnection:
        self._check_host()
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = kind(self._host, self._port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except offline.NetworkBlocked as exc:
            raise ServerRefused(f"the model server {self.base_url} was refused: {exc}") from None
        except OSError as exc:
            raise ServerUnreachable(
                f"the model server at {self.base_url} does not answer ({_reason(exc)}); start it "
                "(python -m llama_cpp.server --model FILE --host HOST --port PORT) or correct its address"
            ) from None
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        return conn

    def _send(
        self, conn: http.client.HTTPConnection, method: str, path: str, body: Any = None
    ) -> http.client.HTTPResponse:
        headers = {"Accept": "application/json, text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            response = conn.getresponse()
        except TimeoutError:
            raise ModelError(
                f"the model server at {self.base_url} did not answer within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise ServerUnreachable(
                f"the model server at {self.base_url} stopped answering ({_reason(exc)}); check that it runs"
            ) from None
        except http.client.HTTPException as exc:
            raise ServerUnreachable(
                f"the model server at {self.base_url} closed the connection ({type(exc).__name__}); "
                "check that it runs"
            ) from None
        if response.status in (401, 403):
            raise ServerRefused(
                f"the model server at {self.base_url} refused the API key (HTTP {response.status}); "
                "check the key IT gave"
            )
        if response.status >= 400:
            detail = response.read(2000).decode("utf-8", "replace")
            raise ModelError(f"the model server answered HTTP {response.status} to {path}: {_detail(detail)}")
        return response

    def _json(self, conn: http.client.HTTPConnection, method: str, path: str, body: Any = None) -> Any:
        response = self._send(conn, method, path, body)
        try:
            return json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ServerUnreachable(
                f"the model server at {self.base_url} sent no whole answer to {path} ({type(exc).__name__})"
            ) from None

    # --- life cycle -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Check that the server answers, accepts the key and serves the model asked for."""
        with self._lock:
            conn = self._connect()
            try:
                listed = self._json(conn, "GET", "/v1/models")
            finally:
                conn.close()
        ids = [str(m.get("id")) for m in listed.get("data", []) if isinstance(m, dict)]
        if self.model and ids and self.model not in ids:
            raise ModelError(
                f"the model server at {self.base_url} does not serve '{self.model}' (it serves: {', '.join(ids)})"
            )

    def close(self) -> None:
        self.cancel()

    # --- requests ---------------------------------------------------------------------
    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text as the local model counts them: without the BOS the server's tokenize adds."""
        with self._lock:
            conn = self._connect()
            try:
                if self._bos is None:
                    self._bos = len(self._tokenize(conn, ""))
                return [max(0, len(self._tokenize(conn, t)) - self._bos) for t in texts]
            finally:
                conn.close()

    def _tokenize(self, conn: http.client.HTTPConnection, text: str) -> list[int]:
        body: dict[str, Any] = {"input": text}
        if self.model:
            body["model"] = self.model
        return list(self._json(conn, "POST", "/extras/tokenize", body)["tokens"])

    def generate(
        self,
        prompt: str | None = None,
        messages: list[dict[str, str]] | None = None,
        max_tokens: int = 256,
        stop: list[str] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]:
        """Yield text pieces as the server streams them; `finish_reason` is set at the end. `grammar`
        (GBNF) holds the output to what it allows (llama_cpp.server's `grammar` field)."""
        body: dict[str, Any] = {**SAMPLING, "max_tokens": max_tokens, "stop": stop or None, "stream": True}
        if self.model:
            body["model"] = self.model
        if grammar:
            body["grammar"] = grammar
        if messages:
            path, body["messages"] = "/v1/chat/completions", messages
        else:
            path, body["prompt"] = "/v1/completions", prompt or ""
        with self._lock:
            self.finish_reason = "stop"
            self._cancelled.clear()
            self._active = True
            conn: http.client.HTTPConnection | None = None
            try:
                conn = self._connect()
                self._streaming = conn.sock
                try:
                    response = self._send(conn, "POST", path, body)
                except ModelError:
                    if not self._cancelled.is_set():
                        raise
                    self.finish_reason = "cancelled"  # cancelled while the request went out
                    return
                yield from self._pieces(response, chat=bool(messages))
            finally:
                self._active = False
                self._streaming = None
                if conn is not None:
                    conn.close()

    def _pieces(self, response: http.client.HTTPResponse, chat: bool) -> Iterator[str]:
        done = False
        finish = "stop"
        while not done:
            try:
                raw = response.readline()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if self._cancelled.is_set():
                    break
                if isinstance(exc, TimeoutError):
                    raise ModelError(
                        f"the model server at {self.base_url} sent nothing for {self.timeout:g} s"
                    ) from None
                raise ServerUnreachable(
                    f"the model server at {self.base_url} stopped in the middle of an answer "
                    f"({_reason(exc)}); check that it runs"
                ) from None
            if not raw:  # the stream ended
                if self._cancelled.is_set():
                    break
                if not self._answers():
                    raise ServerUnreachable(
                        f"the model server at {self.base_url} stopped in the middle of an answer and does not "
                        "answer any more; check that it runs"
                    )
                raise ModelError(
                    f"the model server at {self.base_url} ended the answer without finishing it "
                    "(its log says why: a prompt longer than its context, a grammar it could not read)"
                )
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):  # blank separators, ": ping" comments, event names
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            if "error" in chunk:
                raise ModelError(f"the model server failed: {_detail(json.dumps(chunk['error']))}")
            choice = (chunk.get("choices") or [{}])[0]
            text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
            if text:
                yield text
            if choice.get("finish_reason"):
                finish = FINISH.get(choice["finish_reason"], "stop")
            if self._cancelled.is_set():
                break
        self.finish_reason = "cancelled" if self._cancelled.is_set() and not done else finish

    def _answers(self) -> bool:
        """Whether the server still answers a request (a stream that ended early: stopped, or failed?). A
        connection alone proves nothing: a process being killed still accepts them until it is gone."""
        try:
            conn = self._connect()
        except ModelError:
            return False
        try:
            return self._send(conn, "GET", "/v1/models").status < 500
        except (ModelError, OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def cancel(self) -> None:
        """Stop the answer under way, from any thread, without waiting: its connection is shut, and the
        server stops generating when it sees the client gone (after the token it is computing)."""
        if not self._active:
            return
        self._cancelled.set()
        sock = self._streaming
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def _detail(text: str) -> str:
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    if isinstance(parsed, dict):
        inner = parsed.get("error", parsed.get("detail", parsed))
        if isinstance(inner, dict):
            inner = inner.get("message", inner)
        return str(inner)[:300]
    return str(parsed)[:300]
