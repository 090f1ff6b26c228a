import os
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
        "from sealroom.core.runtime import offline\n"
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


def test_the_guard_covers_udp_name_lookups_and_every_process_sealroom_starts():
    code = (
        "import socket\n"
        "from sealroom.core.runtime import offline\n"
        "offline.enforce()\n"
        "for attempt in (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('192.0.2.1', 53)),\n"
        "                lambda: socket.getaddrinfo('example.org', 443)):\n"
        "    try:\n"
        "        attempt(); print('went through')\n"
        "    except offline.NetworkBlocked:\n"
        "        print('blocked')\n"
        "socket.getaddrinfo('localhost', 80); print('localhost ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30).stdout
    assert out.split() == ["blocked", "blocked", "localhost", "ok"], out
    # each worker process installs the guard itself: code inside them that phones home is refused
    parser = (
        "import socket, sealroom.core.ingest.parsers as p\n"
        "p.parse = lambda path, max_chars=0, part=(0, 1), pdfium=True: socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
        "from sealroom.core.ingest.parse_worker import main; main()\n"
    )
    llm = (
        "import socket, sys, types\n"
        "fake = types.ModuleType('llama_cpp')\n"
        "fake.Llama = lambda **kw: socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
        "sys.modules['llama_cpp'] = fake\n"
        "from sealroom.models.llm_worker import main; main()\n"
    )
    for code, request in ((parser, '{"path": "/x.pdf"}'), (llm, '{"op": "load", "path": "m", "n_ctx": 8}')):
        proc = subprocess.run(
            [sys.executable, "-c", code], input=request + "\n", capture_output=True, text=True, timeout=60
        )
        assert "NetworkBlocked" in proc.stdout, (proc.stdout, proc.stderr[-2000:])


def test_chroma_runs_without_its_span_exporter_whatever_the_environment_asks(tmp_path: Path):
    """The real vector store opens, writes and searches with Chroma's OTLP exporter replaced: gRPC is
    never loaded (12 MB), and tracing stays off even when the environment turns it on."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sealroom.core.runtime import offline\n"
        "offline.enforce()\n"
        "import numpy as np\n"
        "from chromadb.config import Settings\n"
        "from sealroom.core.store.vectorstore import VectorStore\n"
        "class Embedder:\n"
        "    model_id = 'test'\n"
        "    def embed(self, texts): return np.ones((len(texts), 4), dtype=np.float32)\n"
        f"store = VectorStore(Path({str(tmp_path)!r}), Embedder())\n"
        "v = np.ones((1, 4), dtype=np.float32)\n"
        "store.upsert(['c1-0'], v, ['c1'], ['p'])\n"
        "print('found', store.query(v[0], 1)[0][0])\n"
        "print('granularity', Settings().chroma_otel_granularity)\n"
        "print('grpc', 'grpc' in sys.modules)\n"
        "from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter\n"
        "try:\n"
        "    OTLPSpanExporter(endpoint='http://192.0.2.1:4317'); print('exporter made')\n"
        "except offline.NetworkBlocked:\n"
        "    print('exporter refused')\n"
    )
    env = {
        **os.environ,
        "CHROMA_OTEL_GRANULARITY": "all",
        "CHROMA_OTEL_COLLECTION_ENDPOINT": "http://192.0.2.1:4317",
    }
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.stdout.split() == [
        "found",
        "c1-0",
        "granularity",
        "none",
        "grpc",
        "False",
        "exporter",
        "refused",
    ], (proc.stdout, proc.stderr[-2000:])


def test_worker_commands_run_from_source_and_from_a_frozen_bundle(monkeypatch):
    import sys

    import pytest

    from sealroom.core.runtime import workers

    assert workers.worker_command("sealroom.core.ingest.parse_worker", "480") == [
        sys.executable,
        "-m",
        "sealroom.core.ingest.parse_worker",
        "480",
    ]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    command = workers.worker_command("sealroom.models.llm_worker")
    assert command == [sys.executable, "--sealroom-worker", "sealroom.models.llm_worker"]
    with pytest.raises(ValueError):
        workers.worker_command("os")
    assert not workers.run_worker_from_argv(["sealroom", "status"])
    with pytest.raises(SystemExit, match="unknown worker"):
        workers.run_worker_from_argv(["sealroom", "--sealroom-worker", "os"])
