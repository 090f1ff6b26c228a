"""Export to a real SMB share (smbd on loopback) with the password in a real Secret Service keyring."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import docx
import pytest

from sealroom.core.engine import Engine

from .conftest import SMB_PASSWORD, SMB_USER, Samba
from .records import store_answer

pytestmark = pytest.mark.slow


def _policy(path: Path, **keys: object) -> Path:
    lines = ["schema_version = 1"] + [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def env(tmp_path: Path, secret_service: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "home"
    policy = _policy(tmp_path / "policy.toml", allowed_hosts=["127.0.0.1"])
    monkeypatch.setenv("SEALROOM_HOME", str(home))
    monkeypatch.setenv("SEALROOM_POLICY", str(policy))
    return dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(policy))


def sealroom(
    env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "sealroom.core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sealroom {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def _add_share(env: dict[str, str], samba: Samba, name: str = "Legal", password: str = SMB_PASSWORD) -> None:
    out = sealroom(
        env,
        "destinations",
        "add",
        name,
        "--smb",
        samba.url,
        "--user",
        SMB_USER,
        "--password-stdin",
        stdin=password + "\n",
    )
    assert "password kept in the OS keyring" in out.stdout


def test_export_reaches_the_share_and_the_password_lives_only_in_the_keyring(
    env, samba: Samba, tmp_path: Path
):
    samba.clear()
    with Engine() as engine:
        _, answer = store_answer(engine, 10)
    _add_share(env, samba)
    import keyring

    assert (
        keyring.get_password("Sealroom", f"smb:legal:{SMB_USER}@127.0.0.1:{samba.port}/docs") == SMB_PASSWORD
    )
    assert "Legal: SMB share //127.0.0.1" in sealroom(env, "destinations").stdout
    assert "OK, can write" in sealroom(env, "destinations", "test", "Legal").stdout
    for fmt in ("md", "docx", "json"):
        result = json.loads(
            sealroom(
                env, "export", "--answer", str(answer), "--to", "Legal", "--format", fmt, "--json"
            ).stdout
        )
        assert result["status"] == "delivered", result
        data = samba.files()[result["file_name"]]
        assert hashlib.sha256(data).hexdigest() == result["sha256"]
    files = samba.files()
    assert len(files) == 3 and not [n for n in files if n.startswith(".")]  # no temp or probe file left
    word = docx.Document(io.BytesIO(next(v for k, v in files.items() if k.endswith(".docx"))))
    assert len(word.tables[0].rows) == 11
    doc = json.loads(next(v for k, v in files.items() if k.endswith(".json")))
    assert len(doc["answers"][0]["citations"]) == 10
    sealroom(env, "audit", "export", "--to", "Legal")
    assert sealroom(env, "audit", "verify").stdout.startswith("OK:")
    # the password is nowhere but in the keyring: settings, logs, audit, outbox, destinations, exports
    leaks = [
        str(p)
        for base in (Path(env["SEALROOM_HOME"]), Path(env["SEALROOM_POLICY"]).parent, samba.folder)
        for p in base.rglob("*")
        if p.is_file() and SMB_PASSWORD.encode() in p.read_bytes()
    ]
    assert leaks == []
    records = [
        json.loads(line)
        for line in (Path(env["SEALROOM_HOME"]) / "audit" / "audit.jsonl").read_text().splitlines()
    ]
    assert all("mac" in r for r in records)  # the keyring holds the audit key: every record is signed
    delivered = [r["data"] for r in records if r["event"] == "export_delivered"]
    assert {d["file"] for d in delivered} == set(samba.files())


def test_share_down_export_waits_then_is_delivered_exactly_once(env, samba: Samba):
    samba.clear()
    with Engine() as engine:
        _, answer = store_answer(engine, 10)
    _add_share(env, samba)
    samba.stop()
    try:
        out = json.loads(sealroom(env, "export", "--answer", str(answer), "--to", "Legal", "--json").stdout)
        assert out["status"] == "pending" and "not reachable" in out["reason"], out
        listing = sealroom(env, "outbox").stdout
        assert listing.startswith("pending") and "connection refused" in listing
    finally:
        samba.start()
    with Engine() as engine:  # the courier (run by `watch` and the window) notices the share is back
        stop = threading.Event()
        started = time.perf_counter()
        courier = threading.Thread(target=engine.output.courier, args=(stop, 0.2))
        courier.start()
        while engine.output.outbox.items("pending") and time.perf_counter() - started < 30:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        courier.join()
        print(f"\ndelivered {elapsed:.2f} s after the share came back")
        item = engine.output.outbox.items()[0]
        assert item.status == "delivered" and item.delivered_as == out["file_name"]
    assert list(samba.files()) == [out["file_name"]]
    sealroom(env, "outbox", "retry")  # a delivered item is never sent again
    assert list(samba.files()) == [out["file_name"]]
    again = json.loads(sealroom(env, "export", "--answer", str(answer), "--to", "Legal", "--json").stdout)
    assert again["file_name"].endswith(
        " (2).md"
    )  # exported again on purpose: a new file, nothing overwritten
    assert len(samba.files()) == 2


def test_smbd_stopped_mid_delivery_never_loses_or_doubles(env, samba: Samba, monkeypatch):
    """smbd goes down right after the 3rd file reached the share, before the outbox could note it."""
    from sealroom.core.output import destinations

    samba.clear()
    put = destinations.SmbWriter.put
    calls = []

    def put_then_lose_the_server(self, name, data):
        written = put(self, name, data)
        calls.append(name)
        if len(calls) == 3:
            samba.stop()
            raise destinations.Offline("connection lost")  # as smbprotocol reports a dropped server
        return written

    monkeypatch.setattr(destinations.SmbWriter, "put", put_then_lose_the_server)
    with Engine() as engine:
        ids = [store_answer(engine, 10, f"Question number {i}?")[1] for i in range(6)]
        engine.output.add_destination("Legal", smb=samba.url, user=SMB_USER, password=SMB_PASSWORD)
        results = [engine.output.export("Legal", "docx", answer_id=answer) for answer in ids]
        assert [r.item.status for r in results] == ["delivered"] * 2 + ["pending"] * 4
        assert len(samba.files()) == 3  # the third is there, the outbox does not know it yet
        samba.start()
        engine.output.retry()
        items = engine.output.outbox.items()
        assert [i.status for i in items] == ["delivered"] * 6, [(i.status, i.reason) for i in items]
    on_share = samba.files()
    assert sorted(on_share) == sorted(i.delivered_as for i in items)  # no "(2)" copy of the third
    assert sorted(hashlib.sha256(v).hexdigest() for v in on_share.values()) == sorted(i.sha256 for i in items)


def test_wrong_password_fails_with_the_reason_and_loses_nothing(env, samba: Samba):
    samba.clear()
    with Engine() as engine:
        _, answer = store_answer(engine, 3)
    _add_share(env, samba, password="not-the-password")
    out = sealroom(env, "export", "--answer", str(answer), "--to", "Legal", "--json", check=False)
    assert out.returncode == 1
    item = json.loads(out.stdout)
    assert item["status"] == "failed" and "wrong user name or password" in item["reason"]
    assert samba.files() == {}
    assert "failed" in sealroom(env, "outbox").stdout
    sealroom(env, "destinations", "remove", "Legal")
    _add_share(env, samba)  # the right password
    retried = sealroom(env, "outbox", "retry").stdout
    assert retried.startswith("delivered")
    assert list(samba.files()) == [item["file_name"]]


def test_host_outside_allowed_hosts_is_refused_before_any_connection_and_audited(
    env, samba: Samba, tmp_path: Path
):
    samba.clear()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    policy = Path(env["SEALROOM_POLICY"])
    with Engine() as engine:
        _, answer = store_answer(engine, 2)
    sealroom(
        env,
        "destinations",
        "add",
        "Trap",
        "--smb",
        f"//127.0.0.1:{port}/docs",
        "--user",
        "u",
        "--password-stdin",
        stdin="pw\n",
    )
    _add_share(env, samba)
    _policy(policy, allowed_hosts=[])
    for name in ("Trap", "Legal"):
        out = sealroom(env, "export", "--answer", str(answer), "--to", name, check=False)
        assert out.returncode == 1 and "not in the IT policy's allowed_hosts" in out.stderr
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody knocked
    listener.close()
    refused = json.loads(sealroom(env, "audit", "--json").stdout)["records"]
    assert [r["data"]["destination"] for r in refused if r["event"] == "export_refused"] == ["Trap", "Legal"]
    assert samba.files() == {}
    _policy(policy, allowed_hosts=["127.0.0.1"])
    out = json.loads(sealroom(env, "export", "--answer", str(answer), "--to", "Legal", "--json").stdout)
    assert out["status"] == "delivered" and list(samba.files()) == [out["file_name"]]
    events = [r["event"] for r in json.loads(sealroom(env, "audit", "--json", "-n", "100").stdout)["records"]]
    assert events.count("policy_loaded") >= 2  # each policy change is on the record


def test_a_recomputed_chain_is_caught_by_the_keyring_hmac(env, secret_service: str):
    with Engine() as engine:
        store_answer(engine, 1)
        engine.audit.record("question_asked", chat_id=1, question_sha256="0" * 64)
        engine.audit.record("question_asked", chat_id=2, question_sha256="1" * 64)
    assert sealroom(env, "audit", "verify").stdout.startswith("OK:")
    from sealroom.core.output.audit import AuditTrail

    from .test_export import _forge

    _forge(AuditTrail(Path(env["SEALROOM_HOME"])), 1)
    out = sealroom(env, "audit", "verify", check=False)
    assert out.returncode == 1 and ("signature" in out.stdout or "anchor" in out.stdout)


def test_no_keyring_says_so_in_one_line_and_stores_nothing(env, samba: Samba):
    bare = {k: v for k, v in env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    bare["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    out = sealroom(
        bare,
        "destinations",
        "add",
        "Legal",
        "--smb",
        samba.url,
        "--user",
        SMB_USER,
        "--password-stdin",
        stdin="pw\n",
        check=False,
    )
    assert out.returncode == 1
    assert (
        out.stderr.count("\n") == 1
        and "no keyring is available" in out.stderr
        and "gnome-keyring" in out.stderr
    )
    assert "Legal" not in sealroom(bare, "destinations").stdout
    assert not any(b"pw" in p.read_bytes() for p in Path(env["SEALROOM_HOME"]).glob("*.json"))


def test_verifying_before_the_first_record_does_not_leave_the_trail_unsigned(
    tmp_path: Path, secret_service: str
):
    from sealroom.core.output.audit import AuditTrail

    trail = AuditTrail(tmp_path / "fresh-home")
    assert trail.verify().ok  # looks for the key, finds none yet
    record = trail.record("folder_added", folder="/docs")
    assert record is not None and "mac" in record
    assert trail.verify().signed == 1


def test_a_link_planted_in_the_share_is_not_written_through(env, samba: Samba, tmp_path: Path):
    """Issue 24: anyone who can write the share can plant a link at an export's predictable name."""
    samba.clear()
    with Engine() as engine:
        _, answer = store_answer(engine, 2)
    _add_share(env, samba)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    victim.chmod(0o600)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    for name in (f"{day}-answer-{answer}.md", f".{day}-answer-{answer}.md.part"):
        (samba.folder / name).symlink_to(victim)
    proc = sealroom(env, "export", "--answer", str(answer), "--to", "Legal", "--json", check=False)
    out = json.loads(proc.stdout)
    assert out["status"] == "delivered" and out["file_name"] != f"{day}-answer-{answer}.md", out["reason"]
    assert victim.read_text() == "keep" and (victim.stat().st_mode & 0o777) == 0o600
    assert (samba.folder / out["file_name"]).is_file() and not (samba.folder / out["file_name"]).is_symlink()
