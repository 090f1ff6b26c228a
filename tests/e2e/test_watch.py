"""`sealroom watch --json`: the event stream as files are created, edited, moved and deleted."""

import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


class Watch:
    def __init__(self, home: Path) -> None:
        env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "none.toml"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sealroom.core.cli", "watch", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def expect(self, event: str, path: Path | None = None, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            item = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if item["event"] == event and (path is None or item.get("path") == str(path)):
                return item

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def test_watch_follows_the_disk(home: Path, tmp_path: Path):
    from tests.conftest import cli

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "start.txt").write_text("Present before the watcher starts.")
    cli(home, "add", str(docs))
    watch = Watch(home)
    try:
        watch.expect("indexed", docs / "start.txt", timeout=120)
        watch.expect("ready")
        latencies = []
        for i in range(8):
            target = docs / f"note{i}.txt"
            saved = time.monotonic()
            target.write_text(f"Meeting {i} moved to room {100 + i}.")
            watch.expect("indexed", target)
            latencies.append(time.monotonic() - saved)
        # an editor's save: write a temp file, then rename it over the original
        tmp = docs / ".note0.txt.swp"
        tmp.write_text("Meeting 0 cancelled.")
        os.replace(tmp, docs / "note0.txt")
        watch.expect("indexed", docs / "note0.txt")
        (docs / "note1.txt").rename(docs / "renamed.txt")
        moved = watch.expect("indexed", docs / "renamed.txt")
        assert moved.get("reused") is True  # recognised by content hash: no re-embedding
        watch.expect("removed", docs / "note1.txt")
        (docs / "note2.txt").unlink()
        watch.expect("removed", docs / "note2.txt")
        bad = docs / "broken.pdf"
        bad.write_bytes(b"%PDF-1.4 nothing here")
        failed = watch.expect("failed", bad)
        assert failed["reason"]
    finally:
        watch.stop()
    print(f"save-to-indexed latency: p50 {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")
    assert watch.proc.returncode == 0
