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


#: The fast lane (`make test-fast`): modules that test logic in-process with fakes and real files - no model,
#: no subprocess, no service. tests/test_architecture.py checks they stay that way.
UNIT_MODULES = {
    "tests/core/test_answer.py",
    "tests/core/test_ask_pipeline.py",
    "tests/core/test_chunker.py",
    "tests/core/test_cli.py",
    "tests/core/test_config.py",
    "tests/core/test_control.py",
    "tests/core/test_evaluate.py",
    "tests/core/test_evidence.py",
    "tests/core/test_feedback_logic.py",
    "tests/core/test_parsers.py",
    "tests/core/test_passages.py",
    "tests/core/test_paths.py",
    "tests/core/test_retriever.py",
    "tests/core/test_verify.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(ROOT).as_posix() in UNIT_MODULES and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.unit)


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
