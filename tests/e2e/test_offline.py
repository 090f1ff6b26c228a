"""add → index → search → ask inside a network namespace with no network at all."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PDFS

pytestmark = [pytest.mark.slow, pytest.mark.netns]


def can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not can_unshare(), reason="needs root and unshare -n (CI runs as root)")
def test_full_flow_without_network(home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    shutil.copytree(PDFS / "017-unreadable-meta-data", docs)
    env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "none.toml"))

    def run(*args: str) -> str:
        proc = subprocess.run(
            ["unshare", "-n", sys.executable, "-m", "sealroom.core.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert (
        subprocess.run(
            [
                "unshare",
                "-n",
                sys.executable,
                "-c",
                "import socket; socket.create_connection(('192.0.2.1', 80), timeout=2)",
            ],
            capture_output=True,
        ).returncode
        != 0
    )  # really no network in there
    run("add", str(docs))
    run("index")
    hits = json.loads(run("search", "wirewound potentiometer", "--json"))["hits"]
    assert hits and hits[0]["page"] == 1
    answer = json.loads(run("ask", "What is the power rating of the potentiometer?", "--json"))
    assert answer["called_model"] and answer["answer"]
    # export to a folder (a mounted share looks the same) works with no network at all
    out = tmp_path / "mounted-share"
    out.mkdir()
    run("destinations", "add", "Share", "--folder", str(out))
    for fmt in ("md", "docx", "json"):
        result = json.loads(
            run("export", "--chat", str(answer["chat_id"]), "--to", "Share", "--format", fmt, "--json")
        )
        assert result["status"] == "delivered"
        assert hashlib.sha256((out / result["file_name"]).read_bytes()).hexdigest() == result["sha256"]
    exported = json.loads(next(out.glob("*.json")).read_text())
    assert exported["answers"][0]["question"] == "What is the power rating of the potentiometer?"
    assert exported["answers"][0]["citations"][0]["page"] == 1
    assert sorted(p.suffix for p in out.iterdir()) == [".docx", ".json", ".md"]
    assert run("audit", "verify").startswith("OK:")
