"""Export figures for a 10-citation answer: render + deliver time per format, and delivery after a share returns.

    python bench/export.py                         # folder destination only
    python bench/export.py --smb //127.0.0.1:14450/docs/out --user U --smbd-conf /path/smb.conf
        (the password in SEALROOM_BENCH_SMB_PASSWORD; with --smbd-conf the script stops and restarts
        that smbd to time delivery after the share comes back; needs a keyring, e.g. dbus-run-session)

Prints a table and writes bench/results/export.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sealroom.core.engine import Engine  # noqa: E402
from tests.output.records import store_answer  # noqa: E402

RUNS = 5


def timed_exports(engine: Engine, dest: str, answer: int) -> dict[str, float]:
    out = {}
    for fmt in ("md", "docx", "json"):
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            result = engine.output.export(dest, fmt, answer_id=answer)
            times.append((time.perf_counter() - started) * 1000)
            assert result.delivered, result.item.reason
            time.sleep(1.01)  # exported_at has 1 s resolution: the next run is a new document
        out[fmt] = round(statistics.median(times), 1)
    return out


def after_return(engine: Engine, dest: str, answer: int, down: object, up: object) -> float:
    down()  # type: ignore[operator]
    result = engine.output.export(dest, "md", answer_id=answer)
    assert result.item.status == "pending", result.item
    stop = threading.Event()
    courier = threading.Thread(target=engine.output.courier, args=(stop,))  # the app's 2 s probe
    courier.start()
    up()  # type: ignore[operator]
    back = time.perf_counter()
    while engine.output.outbox.items("pending") and time.perf_counter() - back < 120:
        time.sleep(0.02)
    elapsed = time.perf_counter() - back
    stop.set()
    courier.join()
    return round(elapsed, 2)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--smb")
    p.add_argument("--user", default="")
    p.add_argument("--smbd-conf")
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "export.json"))
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sealroom-export-bench-"))
    os.environ["SEALROOM_HOME"] = str(tmp / "home")
    policy = tmp / "policy.toml"
    policy.write_text('allowed_hosts = ["127.0.0.1"]\n')
    os.environ["SEALROOM_POLICY"] = str(policy)
    folder = tmp / "share"
    folder.mkdir()
    results: dict[str, object] = {"citations": 10, "runs": RUNS, "machine": f"{os.cpu_count()} cores"}
    with Engine() as engine:
        _, answer = store_answer(engine, 10)
        engine.output.add_destination("Folder", folder=str(folder))
        results["folder_ms"] = timed_exports(engine, "Folder", answer)
        results["folder_after_return_s"] = after_return(
            engine,
            "Folder",
            answer,
            lambda: folder.rename(tmp / "away"),
            lambda: (tmp / "away").rename(folder),
        )
        if args.smb:
            engine.output.add_destination(
                "Share", smb=args.smb, user=args.user, password=os.environ["SEALROOM_BENCH_SMB_PASSWORD"]
            )
            results["smb_ms"] = timed_exports(engine, "Share", answer)
            if args.smbd_conf:
                proc: list[subprocess.Popen[bytes]] = []

                def down() -> None:
                    subprocess.run(
                        ["pkill", "-f", f"^smbd --foreground --no-process-group -s {args.smbd_conf}$"],
                        check=False,
                    )
                    time.sleep(1)

                def up() -> None:
                    proc.append(
                        subprocess.Popen(
                            ["smbd", "--foreground", "--no-process-group", "-s", args.smbd_conf],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True,
                        )
                    )

                results["smb_after_return_s"] = after_return(engine, "Share", answer, down, up)
    print(json.dumps(results, indent=1))
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
