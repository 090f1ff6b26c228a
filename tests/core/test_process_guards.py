import subprocess
import sys
import time
from pathlib import Path

from sealroom.core.engine import Engine
from tests.conftest import cli


def test_second_process_is_refused_quickly_naming_the_owner(home: Path):
    with Engine(purpose="sealroom watch"):
        started = time.monotonic()
        proc = cli(home, "folders", check=False, timeout=10)
        elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert "in use by process" in proc.stderr and "sealroom watch" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert elapsed < 5  # includes interpreter start; the lock itself waits 0.5 s


def test_usage_errors_exit_2_without_traceback(home: Path):
    proc = cli(home, "add", str(home / "does-not-exist"), check=False)
    assert proc.returncode == 2 and "not a folder" in proc.stderr and "Traceback" not in proc.stderr
    assert cli(home, "frobnicate", check=False).returncode == 2


def test_socket_guard_refuses_non_loopback_connections():
    code = (
        "import socket\n"
        "from sealroom.core import offline\n"
        "offline.enforce()\n"
        "s = socket.socket(); s.settimeout(1)\n"
        "try:\n"
        "    s.connect(('192.0.2.1', 80))\n"
        "except offline.NetworkBlocked as e:\n"
        "    print('blocked', e)\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
        "c = socket.socket(); c.connect(srv.getsockname()); print('loopback ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30).stdout
    assert "blocked Sealroom works offline" in out and "loopback ok" in out
