"""The Sealroom service for real, as IT runs it: a TLS certificate made with openssl, a configuration file,
`sealroom-server index` and `sealroom-server start` as processes, over a real PostgreSQL and Chroma server
(tests/team/*_server.py). Used by the service's tests and `make bench-team`."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.team.chroma_server import free_port

# `sealroom-server`, as the console script runs it (from this checkout, whatever the venv installed)
SERVER = [sys.executable, "-m", "sealroom.server.cli"]


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (IT's own CA stands behind it in a firm)."""
    cert, key = folder / "service.pem", folder / "service.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class TeamService:
    root: Path
    dsn: str
    chroma: tuple[str, int]
    folders: dict[str, list[str]]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    cert: Path = Path()
    key: Path = Path()

    def __post_init__(self) -> None:
        self.cert, self.key = certificate(self.root)
        self.data = self.root / "server-data"
        folders = "\n".join(f"{json.dumps(f)} = {json.dumps(g)}" for f, g in self.folders.items())
        host, port = self.chroma
        self.config = self.root / "server.toml"
        self.config.write_text(
            f"""[server]
listen = "127.0.0.1:{self.port}"
certificate = "{self.cert}"
key = "{self.key}"
postgres = "{self.dsn}"
chroma = "http://{host}:{port}"
chroma_path = "{self.root / "chroma"}"
data = "{self.data}"

[folders]
{folders}
"""
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            SEALROOM_HOME=str(self.data),
            SEALROOM_POLICY=str(self.root / "no-policy.toml"),
            SEALROOM_SERVER_CONFIG=str(self.config),
        )

    def command(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*SERVER, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"sealroom-server {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}"
            )
        return done

    def index(self) -> dict[str, object]:
        return dict(json.loads(self.command("index").stdout.strip().splitlines()[-1]))

    def token(self, user: str, *groups: str) -> str:
        return self.command("token", "add", user, "--groups", ",".join(groups)).stdout.strip()

    def start(self, workers: int = 1) -> None:
        """`sealroom-server start` (`workers`: uvicorn's worker processes), once it answers /health."""
        log = (self.root / "service.log").open("ab")
        self.process = subprocess.Popen(
            [*SERVER, "start", "--workers", str(workers)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        context = ssl.create_default_context(cafile=str(self.cert))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited: {(self.root / 'service.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5, context=context):
                    time.sleep(2 if workers > 1 else 0)  # the other workers' engines
                    return
            except urllib.error.HTTPError:
                return  # it answers (a 503 says an engine is down, which a drill may want)
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(
            f"the service did not answer in 180 s: {(self.root / 'service.log').read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None
