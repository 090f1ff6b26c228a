"""Issue 24: kill -9 at 20 random moments while a real engine asks (the default model answering) and delivers
exports;
after each, `verify` passes (a cut record or a head behind is noted as such), and every record the engine
had acknowledged is still in the trail. The keyring is the real Secret Service."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sealroom.core.output.audit import AuditTrail

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sealroom.core.engine import Engine

    home, out = Path(sys.argv[1]), Path(sys.argv[2])
    with Engine(home=home, purpose="kill-test") as engine:
        if not engine.output.destinations.all():
            engine.output.add_destination("Out", folder=str(out))
        for i in range(10_000):
            rec = engine.audit.record("question_asked", chat_id=i, question_sha256=f"{i:064d}")
            print(rec["seq"], flush=True)
            answer = engine.ask("What is the monthly rent?")  # the model answers: asks record too
            print(engine.audit.records(1)[-1]["seq"], flush=True)
            engine.output.export("Out", "md", answer_id=answer.answer_id)
            print(engine.audit.records(1)[-1]["seq"], flush=True)
    """
)


@pytest.mark.slow
def test_kill_9_at_20_random_moments_leaves_a_trail_that_verifies(tmp_path: Path, secret_service: str):
    home, out, docs = tmp_path / "home", tmp_path / "out", tmp_path / "docs"
    out.mkdir(), docs.mkdir()
    (docs / "lease.txt").write_text("The monthly rent is 900 euros, due on the first day of each month.\n")
    env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(tmp_path / "none.toml"))
    for args in (["add", str(docs)], ["index"]):
        subprocess.run(
            [sys.executable, "-m", "sealroom.core.cli", *args], env=env, check=True, capture_output=True
        )
    rng = random.Random(24)
    acknowledged: set[int] = set()
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(home), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        seen = ""
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:  # running: records are being written
            seen = proc.stdout.readline()
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 6.0))  # within an ask (the model loads, answers) or an export
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acknowledged |= {int(x) for x in (seen + (proc.stdout.read() or "")).split()}
        result = AuditTrail(home).verify()
        assert result.ok, result.message
    final = AuditTrail(home)
    final.record("question_asked", chat_id=-1)
    result = final.verify()
    assert result.ok and "anchor" in result.message, result.message
    kept = {r["seq"] for r in final.records()}
    assert len(acknowledged) > 20 and acknowledged <= kept  # asks and exports were done, and none is lost
