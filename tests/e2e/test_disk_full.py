"""A full disk under the data folder (a real tmpfs): one line "disk full", nothing damaged or lost,
and indexing resumes where it stopped once there is space."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PDFS, cli
from tests.e2e.test_crash_resume import snapshot

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=700", "tmpfs", str(path)], check=False
    )
    if proc.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def one_line_disk_full(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("sealroom: disk full:"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_full_disk_says_so_in_one_line_loses_nothing_and_indexing_resumes(
    tmp_path: Path, indexed_pdfs: Path
):
    with small_disk(tmp_path / "disk", "3m") as disk:
        home = disk / "home"
        cli(home, "add", str(PDFS))
        one_line_disk_full(cli(home, "index", check=False))  # the PDFs need about 5 MB
        with sqlite3.connect(home / "catalog.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            counts = dict(db.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
            unembedded = db.execute("SELECT count(*) FROM unembedded").fetchone()[0]
        # stopped part way: files still to parse, or parsed (searchable by keyword) with vectors to make
        assert counts.get("indexed") and (counts.get("pending") or unembedded), (counts, unembedded)
        # now the last bytes go too: every command says so in one line, nothing is moved aside
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * (1 << 16))
        for args in (("index",), ("search", "power rating"), ("status",)):
            proc = cli(home, *args, check=False)
            if proc.returncode != 0:
                one_line_disk_full(proc)
        assert not list(home.glob("*.damaged-*")), "a full disk is not a damaged catalog"
        (disk / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        cli(home, "index")
        assert snapshot(home) == snapshot(indexed_pdfs), "the same index as a run that never ran out of space"
        assert os.path.exists(home / "folders.json")
