"""Measure what a desktop user feels: time until the window shows, and GUI-thread stalls.

    SEALROOM_HOME=$(mktemp -d) .venv/bin/python bench/gui.py

A 10 ms QTimer on the GUI thread records the gaps between its ticks while the real window
indexes the shared corpus (pdf, docx, email samples) and answers questions with the default
model. The longest gap is the longest time the window could not react (target < 100 ms).
Runs offscreen unless QT_QPA_PLATFORM says otherwise.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from goals import Row, write

IDLE_LIMIT_MB, PEAK_LIMIT_MB = 600, 1500  # issue 11: whole process tree, idle after indexing / while indexing

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"
QUESTIONS = [
    "What is the power rating of the wirewound potentiometer?",
    "What is a Homöomorphismus?",
    "Which e-mail mentions an attachment?",
]


def window_visible_ms(runs: int = 5) -> list[int]:
    """Cold starts of `sealroom-desktop` (a new Python process each time) until the window is shown."""
    times = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-m", "sealroom.desktop.app", "--quit-after", "1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        line = next(x for x in proc.stderr.splitlines() if "window visible after" in x)
        times.append(int(line.split()[-2]))
    return times


def breakdown(pid: int | None = None) -> None:
    """Each process of the tree: resident anonymous memory (heaps, arenas, caches) and file pages."""
    from sealroom.core.runtime.proctree import tree_pids

    for current in tree_pids(pid):
        try:
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{current}/status").read_text().splitlines()
            )
            cmd = Path(f"/proc/{current}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:70]
        except OSError:
            continue
        mb = {k: int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem")}
        print(
            f"  pid {current}: {mb['VmRSS']:.0f} MB (anon {mb['RssAnon']:.0f}, file {mb['RssFile']:.0f}, "
            f"shmem {mb['RssShmem']:.0f})  {cmd}"
        )


def main() -> int:
    visible = window_visible_ms()
    print(
        f"window visible: median {statistics.median(visible):.0f} ms, max {max(visible)} ms over {len(visible)} starts"
    )

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from sealroom.desktop import ops
    from sealroom.desktop.host import EngineHost
    from sealroom.desktop.window import MainWindow

    app = QApplication([])
    ops.install()
    gaps: list[int] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()))

    def run_until(condition, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit("timed out")
            app.processEvents()
            time.sleep(0.002)

    def report(what: str) -> None:
        ordered = sorted(gaps)
        print(
            f"GUI-thread stall while {what}: longest {ordered[-1]} ms, "
            f"p99 {ordered[int(0.99 * (len(ordered) - 1))]} ms over {len(ordered)} ticks"
        )

    host = EngineHost()
    window = MainWindow(host)
    window.show()
    host.start()
    run_until(lambda: host.engine is not None and host.model.startswith("ready"))
    clock.start()
    timer.start()
    from sealroom.core.runtime.proctree import PeakSampler, tree_rss

    sampler = PeakSampler().__enter__()  # the window, the engine, parser workers and the model process
    started = time.perf_counter()
    for sub in ("pdf-samples", "docx-samples", "email-samples"):
        window.add_folder(str(CORPUS / sub))
    run_until(lambda: window.sidebar.folders.count() == 3)
    run_until(
        lambda: (
            all("pending" not in window.sidebar.folders.item(i).text() for i in range(3))
            and window.sidebar.indexing.status.text().startswith("Up to date")
        )
    )
    report(f"indexing the corpus ({time.perf_counter() - started:.0f} s)")
    sampler.__exit__()
    peak_mb = sampler.peak / 2**20
    gaps.clear()
    clock.restart()
    for question in QUESTIONS:
        window.conversation.ask.emit(question)
        run_until(lambda: not window.conversation.busy)
    report(f"answering {len(QUESTIONS)} questions")
    # idle: indexed, both models loaded, nothing to do for a while (the parser processes stop after
    # IDLE_STOP_S without work; until then their memory counts too)
    from sealroom.core.ingest.parse_pool import IDLE_STOP_S

    settle = time.monotonic() + IDLE_STOP_S + 10
    while time.monotonic() < settle or (host.engine.parts.pool.running and time.monotonic() < settle + 30):
        app.processEvents()
        time.sleep(0.05)
    idle_mb = (tree_rss() or 0) / 2**20
    breakdown()
    print(
        f"process tree: peak {peak_mb:.0f} MB while indexing, {idle_mb:.0f} MB idle with both models loaded"
    )
    write(
        "memory.json",
        [
            Row(
                "desktop idle after indexing, models loaded: tree RSS vs limit",
                idle_mb,
                IDLE_LIMIT_MB,
                "MB",
                1.0,
                higher_is_better=False,
            ),
            Row(
                "desktop while indexing the corpus: peak tree RSS vs limit",
                peak_mb,
                PEAK_LIMIT_MB,
                "MB",
                1.0,
                higher_is_better=False,
            ),
        ],
        window_visible_ms=statistics.median(visible),
    )
    timer.stop()
    window.quitting = True
    window.close()
    host.shutdown()
    app.shutdown()  # Qt's objects go before the interpreter's last collection (PySide6 aborted in it)
    return 0


if __name__ == "__main__":
    code = main()
    # Results are written. This process built the window in-process and drove it for minutes; PySide6
    # then aborts in the interpreter's final garbage collection ("deallocating None"), which would stop
    # `make bench` here. The app itself (desktop/app.py) exits 0 after indexing; this script skips the
    # final collection instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
