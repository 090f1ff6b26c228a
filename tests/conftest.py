from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"  # a copy of ../shared/corpus, so a plain clone tests
PDFS = CORPUS / "pdf-samples"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("SEALROOM_HOME", str(path))
    monkeypatch.setenv("SEALROOM_POLICY", str(tmp_path / "no-policy.toml"))
    return path


def cli(home: Path, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "no-policy.toml"))
    proc = subprocess.run(
        [sys.executable, "-m", "sealroom.core.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sealroom {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def cli_json(home: Path, *args: str) -> dict:
    return json.loads(cli(home, *args, "--json").stdout)


@pytest.fixture(scope="session")
def indexed_pdfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory with the PDF samples indexed once for the session (read-only use)."""
    home = tmp_path_factory.mktemp("pdf-home")
    cli(home, "add", str(PDFS))
    cli(home, "index")
    yield home
    shutil.rmtree(home, ignore_errors=True)
