"""A real PostgreSQL on loopback for team mode's tests (Debian's `postgresql`, as `make test` installs it).

`postgres_server` starts one server for the session (initdb into a fresh folder, run as the `postgres`
user when the tests run as root); `postgres_dsn` is a new, empty database on it for one test."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINDIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14", "13")]
_names = itertools.count()


def _bindir() -> Path | None:
    for folder in BINDIRS:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """Debian's PostgreSQL on a private folder and a free loopback port; `restart()` stands for an operator
    restarting it (every connection is cut)."""

    root: Path
    bindir: Path
    as_user: list[str]
    port: int = field(default_factory=_free_port)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=sealroom dbname=postgres"

    def _run(self, *args: str, check: bool = True) -> None:
        subprocess.run([*self.as_user, *args], check=check, capture_output=True, timeout=120, cwd=self.root)

    def start(self) -> None:
        data = self.root / "data"
        if not data.exists():
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "sealroom",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            )
        options = f"-k {self.root} -h 127.0.0.1 -p {self.port} -F -c max_connections=120"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-m",
            "fast",
            "-w",
            "stop",
            check=False,
        )

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def run_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the block (skips the test where PostgreSQL or psycopg is missing)."""
    pytest.importorskip("psycopg", reason="team mode's tests need psycopg (pip install -e '.[test]')")
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="sealroom-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PostgresServer(root, bindir, as_user)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The DSN of the `postgres` database of a server running for the session."""
    with run_postgres() as server:
        yield server.dsn


@pytest.fixture
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """A new, empty database for one test, dropped after it."""
    import psycopg

    name = f"test_{os.getpid()}_{next(_names)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
