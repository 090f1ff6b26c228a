"""Team mode's servers, started for real on this machine for the tests that use them.

Each server has its own block below (the chat model server here; PostgreSQL and Chroma join in blocks of
their own), so the blocks merge side by side. A session-scoped fixture is shared through the session's
stash, so a test module elsewhere that imports it (tests/test_protocols.py) reuses the same server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the chat model server: llama.cpp's OpenAI-compatible server (team-llm) ---------------------------------
LLM_SERVER_CTX = 2048
LLM_SERVER_THREADS = 2


@dataclass
class LlamaServer:
    """`python -m llama_cpp.server` on loopback, serving one GGUF file."""

    model: Path
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_llama_server(
    model: Path,
    log: Path,
    n_ctx: int = LLM_SERVER_CTX,
    threads: int = LLM_SERVER_THREADS,
    timeout: float = 120,
    api_key: str | None = None,
) -> LlamaServer:
    """Start the server and wait until it answers /v1/models (the model is loaded by then)."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)]
    command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    command += ["--n_batch", "128", "--n_ubatch", "128"]  # the local worker's batches (models/llm_worker.py)
    if api_key:
        command += ["--api_key", api_key]
    env = dict(os.environ, HF_HUB_OFFLINE="1", DO_NOT_TRACK="1")
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = LlamaServer(model, f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited {proc.returncode}: {log.read_text()[-2000:]}")
        ask = urllib.request.Request(server.url + "/v1/models")
        if api_key:
            ask.add_header("Authorization", f"Bearer {api_key}")
        try:
            with urllib.request.urlopen(ask, timeout=2) as reply:
                if json.load(reply).get("data"):
                    return server
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"llama_cpp.server did not answer within {timeout:g} s: {log.read_text()[-2000:]}"
            )
        time.sleep(0.2)


@pytest.fixture(scope="session")
def llm_server_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file the in-process default model runs (the compact copy of the shipped file), so the two compare."""
    from sealroom.core.components import make_generator
    from sealroom.core.runtime.config import Settings

    home = tmp_path_factory.mktemp("llm-server-home")
    (home / "logs").mkdir()
    _, entry = make_generator(home, Settings())
    return Path(entry.path)


LLM_SERVER_KEY = pytest.StashKey[LlamaServer]()


@pytest.fixture(scope="session")
def llm_server(
    request: pytest.FixtureRequest, llm_server_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The base URL of a llama_cpp.server running the default model on loopback (n_ctx 2048, 2 threads),
    stopped when the session ends. Tests that stop a server start their own (`start_llama_server`)."""
    stash = request.config.stash
    if LLM_SERVER_KEY not in stash:
        server = start_llama_server(llm_server_model, tmp_path_factory.mktemp("llm-server") / "server.log")
        stash[LLM_SERVER_KEY] = server
        request.config.add_cleanup(server.stop)
    return stash[LLM_SERVER_KEY].url


# --- end of the chat model server -------------------------------------------------------------------------
