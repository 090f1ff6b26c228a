"""Chroma's own server (`chroma run`) on loopback for team mode's tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# === Chroma server (issue 29: the vector index) ===========================================================
CHROMA = Path(sys.executable).parent / "chroma"  # the venv's `chroma` CLI (chromadb's Rust server)
CHROMA_START_SECONDS = 60


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ChromaServer:
    """`chroma run` on a folder; unpacks as (host, port). `kill()` and `start()` again on the same folder and
    port stand for a crash and a restart."""

    path: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.host, self.port))

    @property
    def log(self) -> Path:
        return self.path.parent / f"{self.path.name}.log"

    def start(self) -> None:
        if not CHROMA.exists():
            pytest.skip(f"no chroma CLI at {CHROMA}")
        self.port = self.port or free_port(self.host)
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False", CHROMA_TELEMETRY="False", DO_NOT_TRACK="1")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.path), "--host", self.host, "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + CHROMA_START_SECONDS
        url = f"http://{self.host}:{self.port}/api/v2/heartbeat"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"chroma run exited {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"chroma run gave no heartbeat in {CHROMA_START_SECONDS} s: {self.log.read_text()[-2000:]}"
        )

    def kill(self) -> None:
        """SIGKILL: the server dies as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@contextlib.contextmanager
def run_chroma(path: Path) -> Iterator[ChromaServer]:
    """A Chroma server on `path`, on a free loopback port, stopped afterwards (tests/test_protocols.py uses
    this too: a conftest's fixtures reach only its own folder)."""
    server = ChromaServer(path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A running `chroma run` on 127.0.0.1 with its data in tmp_path; `host, port = chroma_server`."""
    with run_chroma(tmp_path / "chroma-server") as server:
        yield server


# === end of the Chroma server block =======================================================================
