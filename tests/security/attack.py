"""`make test-security`: a security reviewer's attacks on the real CLI (issue 24), as the user a policy binds.

    .venv/bin/python tests/security/attack.py [-k WORD]

Runs as root in its own mount namespace (`unshare --mount`), where /etc/sealroom is a private tmpfs: the
system policy is really /etc/sealroom/policy.toml, and the host's is neither read nor touched. Inside
`dbus-run-session` with gnome-keyring unlocked (the real Secret Service). Each case sets up a fresh data
folder, attacks, and checks that what IT decided held. Prints tried / held / failed; exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = (
    str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
)
SYSTEM = Path("/etc/sealroom/policy.toml")
WORK = Path(tempfile.mkdtemp(prefix="sealroom-attack-"))
CASES: list[tuple[str, str, Callable[[Path], str]]] = []
QUESTION = "What is the monthly rent of the Zanzibar flat"


def case(group: str) -> Callable[[Callable[[Path], str]], Callable[[Path], str]]:
    def add(fn: Callable[[Path], str]) -> Callable[[Path], str]:
        CASES.append((group, fn.__name__, fn))
        return fn

    return add


class Held(Exception):
    pass


def cli(home: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 120):
    environ = dict(os.environ, SEALROOM_HOME=str(home), **(env or {}))
    environ.pop("SEALROOM_POLICY", None)
    if env and "SEALROOM_POLICY" in env:
        environ["SEALROOM_POLICY"] = env["SEALROOM_POLICY"]
    return subprocess.run(
        [PY, "-m", "sealroom.core.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        input=stdin,
        timeout=timeout,
        cwd=ROOT,
    )


def policy(text: str) -> None:
    SYSTEM.write_text(text)


STRICT = """
export_enabled = true
export_formats = ["md"]
export_destinations = ["{allowed}", "{allowed}/*"]
audit_enabled = true
audit_question_text = false
allowed_hosts = []
"""


def strict(base: Path) -> tuple[Path, Path]:
    allowed, outside = base / "allowed", base / "outside"
    allowed.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    policy(STRICT.format(allowed=allowed))
    return allowed, outside


def records(home: Path) -> list[dict]:
    path = home / "audit" / "audit.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    expect(proc.returncode != 0, f"exit 0: {proc.stdout[-200:]}")
    expect("Traceback" not in proc.stderr, f"traceback: {proc.stderr[-300:]}")
    line = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.stdout.strip()
    for w in words:
        expect(w in line, f"'{w}' not in: {line}")
    return line[:110]


def folder_dest(home: Path, name: str, folder: Path, **env: str):
    return cli(home, "destinations", "add", name, "--folder", str(folder), env=env or None)


def smb_dest(home: Path, name: str, url: str, password: str = "pw", **env: str):
    return cli(
        home,
        "destinations",
        "add",
        name,
        "--smb",
        url,
        "--user",
        "u",
        "--password-stdin",
        stdin=password + "\n",
        env=env or None,
    )


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` mounted read-only (a bind mount in this namespace) while the block runs."""
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def victim_file(base: Path) -> Path:
    """A private file outside every destination, for links planted in one to point at."""
    victim = base / "outside" / "victim.txt"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("keep")
    victim.chmod(0o600)
    return victim


def untouched(victim: Path) -> bool:
    return victim.read_text() == "keep" and (victim.stat().st_mode & 0o777) == 0o600


def ask_about_rent(base: Path, home: Path) -> dict:
    """Index a one-line lease and ask about it: the answer's JSON (quotes found, so the model is asked)."""
    docs = base / "docs"
    docs.mkdir()
    (docs / "lease.txt").write_text("The monthly rent is 900 euros, due on the first day of each month.\n")
    cli(home, "add", str(docs))
    cli(home, "index", timeout=300)
    proc = cli(home, "ask", "What is the monthly rent?", "--json", timeout=300)
    expect(proc.returncode == 0, proc.stderr[-200:])
    return json.loads(proc.stdout)


# --- 1. the policy holds against the user it binds -------------------------------------------------
@case("policy")
def policy_env_var_pointing_nowhere_does_not_lift_it(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    expect(folder_dest(home, "Out", allowed).returncode == 0, "add failed")
    return refused(
        cli(
            home,
            "export",
            "--search",
            "rent",
            "--to",
            "Out",
            "--format",
            "docx",
            env={"SEALROOM_POLICY": "/nonexistent"},
        ),
        "docx",
    )


@case("policy")
def a_looser_policy_file_cannot_widen_formats(base: Path) -> str:
    allowed, _ = strict(base)
    home, loose = base / "home", base / "loose.toml"
    loose.write_text('export_formats = ["md", "docx", "json"]\n')
    folder_dest(home, "Out", allowed)
    return refused(
        cli(
            home,
            "export",
            "--search",
            "x",
            "--to",
            "Out",
            "--format",
            "docx",
            env={"SEALROOM_POLICY": str(loose)},
        )
    )


@case("policy")
def a_looser_policy_file_cannot_open_destinations(base: Path) -> str:
    _, outside = strict(base)
    loose = base / "loose.toml"
    loose.write_text("export_destinations = []\n")
    return refused(folder_dest(base / "home", "Out", outside, SEALROOM_POLICY=str(loose)), "not among")


@case("policy")
def user_settings_cannot_silence_the_audit_trail(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    home.mkdir()
    (home / "settings.toml").write_text("audit_enabled = false\n")
    folder_dest(home, "Out", allowed)
    before = len(records(home))
    proc = cli(home, "export", "--search", "rent", "--to", "Out")
    expect(proc.returncode == 0, proc.stderr)
    expect(len(records(home)) > before, "no records written")
    return f"{len(records(home)) - before} records written"


@case("policy")
def user_settings_and_env_together_cannot_silence_it(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    home.mkdir()
    (home / "settings.toml").write_text("audit_enabled = false\n")
    folder_dest(home, "Out", allowed, SEALROOM_POLICY="/nonexistent")
    before = len(records(home))
    cli(home, "export", "--search", "rent", "--to", "Out", env={"SEALROOM_POLICY": "/nonexistent"})
    expect(len(records(home)) > before, "no records written")
    return f"{len(records(home))} records"


@case("policy")
def user_settings_cannot_widen_formats(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    home.mkdir()
    (home / "settings.toml").write_text('export_formats = ["docx"]\n')
    folder_dest(home, "Out", allowed)
    return refused(cli(home, "export", "--search", "x", "--to", "Out", "--format", "docx"))


@case("policy")
def user_settings_cannot_turn_exports_back_on(base: Path) -> str:
    allowed, _ = strict(base)
    policy(SYSTEM.read_text().replace("export_enabled = true", "export_enabled = false"))
    home = base / "home"
    home.mkdir()
    (home / "settings.toml").write_text("export_enabled = true\n")
    return refused(folder_dest(home, "Out", allowed), "turned off")


@case("policy")
def user_settings_cannot_record_question_text_against_policy(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    home.mkdir()
    (home / "settings.toml").write_text("audit_question_text = true\n")
    folder_dest(home, "Out", allowed)
    cli(home, "export", "--search", QUESTION, "--to", "Out")
    text = (home / "audit" / "audit.jsonl").read_text()
    expect("Zanzibar" not in text, "question words in the trail")
    return "no question words in the trail"


@case("policy")
def an_unparseable_system_policy_stops_sealroom(base: Path) -> str:
    policy("export_enabled = [broken\n")
    return refused(cli(base / "home", "destinations"), "cannot read settings file")


# --- destinations -----------------------------------------------------------------------------------
@case("destinations")
def a_destination_named_like_an_allowed_pattern_is_judged_by_its_folder(base: Path) -> str:
    _, outside = strict(base)
    policy(SYSTEM.read_text().replace("export_destinations = [", 'export_destinations = ["Legal", '))
    return refused(folder_dest(base / "home", "Legal", outside), "not among")


@case("destinations")
def a_link_inside_the_allowed_folder_leading_out_is_refused(base: Path) -> str:
    allowed, outside = strict(base)
    (allowed / "link").symlink_to(outside)
    return refused(folder_dest(base / "home", "Out", allowed / "link"), "not among")


@case("destinations")
def dot_dot_out_of_the_allowed_folder_is_refused(base: Path) -> str:
    allowed, _ = strict(base)
    return refused(folder_dest(base / "home", "Out", allowed / ".." / "outside"), "not among")


@case("destinations")
def a_destination_edited_in_destinations_json_is_refused_at_export(base: Path) -> str:
    allowed, outside = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    data = json.loads((home / "destinations.json").read_text())
    data["destinations"][0]["path"] = str(outside)
    (home / "destinations.json").write_text(json.dumps(data))
    line = refused(cli(home, "export", "--search", "x", "--to", "Out"), "not among")
    expect(not any(outside.iterdir()), "written outside")
    return line


@case("destinations")
def an_allowed_folder_swapped_for_a_link_after_adding_is_refused(base: Path) -> str:
    allowed, outside = strict(base)
    (allowed / "sub").mkdir()
    home = base / "home"
    folder_dest(home, "Out", allowed / "sub")
    (allowed / "sub").rmdir()
    (allowed / "sub").symlink_to(outside)
    proc = cli(home, "export", "--search", "x", "--to", "Out")
    expect(not any(outside.iterdir()), "written outside")
    return refused(proc, "not among")


@case("destinations")
def an_smb_host_the_policy_does_not_list_is_refused_at_add(base: Path) -> str:
    strict(base)
    proc = smb_dest(base / "home", "S", "//evil.example/share")
    return refused(proc)


@case("destinations")
def a_looser_policy_file_cannot_list_another_host(base: Path) -> str:
    strict(base)
    loose = base / "loose.toml"
    loose.write_text('allowed_hosts = ["evil.example"]\nexport_destinations = []\n')
    proc = smb_dest(base / "home", "S", "//evil.example/share", SEALROOM_POLICY=str(loose))
    return refused(proc)


@case("destinations")
def an_smb_port_out_of_range_is_refused_at_once(base: Path) -> str:
    policy("")
    started = time.monotonic()
    proc = smb_dest(base / "home", "S", "//127.0.0.1:99999/share")
    expect(time.monotonic() - started < 30, "waited")
    return refused(proc, "port")


# --- 3. writers that never follow links --------------------------------------------------------------
def _export_into(base: Path, plant: Callable[[Path], None]) -> tuple[Path, Path, dict]:
    allowed, outside = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    ident = hashlib.sha256(b"rent").hexdigest()[:8]
    name = f"{day}-search-{ident}.md"
    plant(allowed / name)
    proc = cli(home, "export", "--search", "rent", "--to", "Out", "--json", timeout=60)
    expect(proc.returncode == 0, proc.stderr[-300:])
    return allowed, outside, json.loads(proc.stdout)


@case("writers")
def a_link_planted_at_the_final_name_is_not_followed(base: Path) -> str:
    victim = victim_file(base)
    _, _, out = _export_into(base, lambda final: final.symlink_to(victim))
    expect(untouched(victim), "victim changed")
    return f"delivered as {out['file_name']}"


@case("writers")
def a_link_planted_at_the_old_temporary_name_is_not_followed(base: Path) -> str:
    victim = victim_file(base)
    _, _, out = _export_into(base, lambda final: (final.parent / f".{final.name}.part").symlink_to(victim))
    expect(untouched(victim), "victim changed")
    expect(out["status"] == "delivered", str(out))
    return "victim untouched, export delivered"


@case("writers")
def a_fifo_at_the_final_name_does_not_hang_the_export(base: Path) -> str:
    _, _, out = _export_into(base, lambda final: os.mkfifo(final))
    expect(out["status"] == "delivered", str(out))
    return f"delivered as {out['file_name']}"


@case("writers")
def a_device_at_the_final_name_is_not_opened(base: Path) -> str:
    _, _, out = _export_into(base, lambda final: os.symlink("/dev/zero", final))
    expect(out["status"] == "delivered", str(out))
    return f"delivered as {out['file_name']}"


@case("writers")
def a_read_only_destination_fails_with_its_reason(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    with read_only(allowed):
        proc = cli(home, "export", "--search", "x", "--to", "Out", "--json")
    out = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    if not out:
        return refused(proc, "read-only")
    expect(out.get("status") == "failed" and "read-only" in out.get("reason", ""), str(out))
    return out["reason"][:110]


@case("writers")
def destinations_test_on_a_read_only_folder_is_one_line(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    with read_only(allowed):
        return refused(cli(home, "destinations", "test", "Out"), "read-only")


# --- 2. the audit trail shows erasure and rollback ---------------------------------------------------
def _trail(base: Path, n: int = 4) -> Path:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    for i in range(n):
        cli(home, "export", "--search", f"q{i}", "--to", "Out")
    proc = cli(home, "audit", "verify")
    expect(proc.returncode == 0 and "anchor" in proc.stdout, proc.stdout + proc.stderr)
    return home


def _broken(home: Path, *words: str) -> str:
    proc = cli(home, "audit", "verify")
    expect(proc.returncode == 1 and proc.stdout.startswith("BROKEN"), proc.stdout + proc.stderr[-200:])
    for w in words:
        expect(w in proc.stdout, f"'{w}' not in {proc.stdout}")
    return proc.stdout.strip()[:110]


def _lines(home: Path) -> list[str]:
    return (home / "audit" / "audit.jsonl").read_text().splitlines()


def _write(home: Path, lines: list[str]) -> None:
    (home / "audit" / "audit.jsonl").write_text("".join(x + "\n" for x in lines))


@case("audit")
def a_deleted_audit_folder_fails_verify(base: Path) -> str:
    home = _trail(base)
    shutil.rmtree(home / "audit")
    return _broken(home, "missing")


@case("audit")
def a_deleted_folder_then_a_new_record_still_fails_verify(base: Path) -> str:
    home = _trail(base)
    shutil.rmtree(home / "audit")
    cli(home, "export", "--search", "again", "--to", "Out")
    return _broken(home)


@case("audit")
def an_edited_record_fails_verify(base: Path) -> str:
    home = _trail(base)
    lines = _lines(home)
    lines[2] = lines[2].replace('"export_queued"', '"export_queueX"')
    _write(home, lines)
    return _broken(home, "changed")


@case("audit")
def a_deleted_record_fails_verify(base: Path) -> str:
    home = _trail(base)
    lines = _lines(home)
    _write(home, lines[:2] + lines[3:])
    return _broken(home)


@case("audit")
def reordered_records_fail_verify(base: Path) -> str:
    home = _trail(base)
    lines = _lines(home)
    lines[2], lines[3] = lines[3], lines[2]
    _write(home, lines)
    return _broken(home)


@case("audit")
def a_truncated_trail_fails_verify(base: Path) -> str:
    home = _trail(base)
    _write(home, _lines(home)[:-3])
    return _broken(home)


@case("audit")
def a_rollback_to_an_older_head_fails_verify(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    cli(home, "export", "--search", "first", "--to", "Out")
    head, lines = (home / "audit" / "head.json").read_text(), _lines(home)
    cli(home, "export", "--search", "second", "--to", "Out")
    (home / "audit" / "head.json").write_text(head)
    _write(home, lines)
    return _broken(home, "rolled back")


@case("audit")
def a_rollback_then_more_use_still_fails_verify(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    head, lines = (home / "audit" / "head.json").read_text(), _lines(home)
    cli(home, "export", "--search", "second", "--to", "Out")
    (home / "audit" / "head.json").write_text(head)
    _write(home, lines)
    cli(home, "export", "--search", "third", "--to", "Out")
    expect(any(r["event"] == "audit_rollback_detected" for r in records(home)), "not recorded")
    return _broken(home, "anchor")


@case("audit")
def a_forged_append_fails_verify(base: Path) -> str:
    home = _trail(base)
    lines = _lines(home)
    last = json.loads(lines[-1])
    forged = {**last, "seq": last["seq"] + 1, "prev": last["hash"], "event": "export_delivered"}
    forged.pop("mac", None)
    forged.pop("hash", None)
    forged["hash"] = hashlib.sha256(
        json.dumps(forged, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    _write(home, [*lines, json.dumps(forged)])
    return _broken(home)


@case("audit")
def a_whole_trail_replaced_fails_verify(base: Path) -> str:
    home = _trail(base)
    other = _trail(base / "other")
    shutil.copy(other / "audit" / "audit.jsonl", home / "audit" / "audit.jsonl")
    shutil.copy(other / "audit" / "head.json", home / "audit" / "head.json")
    return _broken(home)


@case("audit")
def the_anchor_removed_from_the_keyring_fails_verify(base: Path) -> str:
    home = _trail(base)
    code = (
        "import sys; from sealroom.core.runtime import secrets_store; from sealroom.core.output.audit import AuditTrail, "
        "ANCHOR_ACCOUNT; from pathlib import Path; t = AuditTrail(Path(sys.argv[1])); "
        "secrets_store.delete(ANCHOR_ACCOUNT, t._scope())"
    )
    subprocess.run([PY, "-c", code, str(home)], check=True, cwd=ROOT)
    return _broken(home, "anchor")


@case("audit")
def a_record_cut_short_by_a_kill_is_noted_not_broken(base: Path) -> str:
    home = _trail(base)
    with open(home / "audit" / "audit.jsonl", "a") as f:
        f.write('{"seq": 99, "time": "20')
    proc = cli(home, "audit", "verify")
    expect(proc.returncode == 0 and "cut short" in proc.stdout, proc.stdout)
    cli(home, "export", "--search", "after", "--to", "Out")
    proc = cli(home, "audit", "verify")
    expect(proc.returncode == 0, proc.stdout)
    return proc.stdout.strip()[:110]


@case("audit")
def a_command_run_without_a_keyring_is_noted_not_broken(base: Path) -> str:
    home = _trail(base)
    cli(
        home,
        "export",
        "--search",
        "nokeyring",
        "--to",
        "Out",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    )
    proc = cli(home, "audit", "verify")
    expect(proc.returncode == 0 and "no keyring answered" in proc.stdout, proc.stdout)
    return proc.stdout.strip()[:110]


@case("audit")
def verify_without_a_keyring_says_what_it_did_not_check(base: Path) -> str:
    home = _trail(base)
    proc = cli(home, "audit", "verify", env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    expect(proc.returncode == 0 and "NOT checked" in proc.stdout, proc.stdout)
    return proc.stdout.strip()[-80:]


# --- credentials -----------------------------------------------------------------------------------
def _password(account: str) -> str | None:
    code = "import sys; from sealroom.core.runtime import secrets_store; print(secrets_store.get(sys.argv[1]) or '')"
    out = subprocess.run([PY, "-c", code, account], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return out or None


def _smb(base: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    return smb_dest(base / "home", name, "//127.0.0.1/legal", password)


@case("credentials")
def a_second_destination_on_the_same_share_keeps_the_first_password(base: Path) -> str:
    policy('allowed_hosts = ["127.0.0.1"]\n')
    expect(_smb(base, "First", "right").returncode == 0, "add failed")
    expect(_smb(base, "Second", "wrong").returncode == 0, "add failed")
    expect(_password("smb:first:u@127.0.0.1:445/legal") == "right", "first password replaced")
    return "first password intact"


@case("credentials")
def removing_the_second_keeps_the_first_password(base: Path) -> str:
    policy('allowed_hosts = ["127.0.0.1"]\n')
    _smb(base, "First", "right")
    _smb(base, "Second", "wrong")
    cli(base / "home", "destinations", "remove", "Second")
    expect(_password("smb:first:u@127.0.0.1:445/legal") == "right", "first password deleted")
    return "first password intact"


@case("credentials")
def an_unreachable_share_keeps_every_export_in_the_outbox(base: Path) -> str:
    policy('allowed_hosts = ["127.0.0.1"]\n')
    home = base / "home"
    _smb(base, "Share", "wrong")
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    data = json.loads((home / "destinations.json").read_text())
    data["destinations"][0]["port"] = port
    (home / "destinations.json").write_text(json.dumps(data))
    server.close()  # a port nothing listens on: the share is unreachable
    for i in range(3):
        cli(home, "export", "--search", f"x{i}", "--to", "Share", timeout=90)
    proc = cli(home, "outbox", "--json")
    items = json.loads(proc.stdout).get("items", [])
    expect(len(items) == 3, proc.stdout[:200])
    return f"{len(items)} exports kept in the outbox"


# --- 5. data left behind -------------------------------------------------------------------------------
@case("leaks")
def export_file_names_hold_no_question_words(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    out = json.loads(cli(home, "export", "--search", QUESTION, "--to", "Out", "--json").stdout)
    expect("Zanzibar" not in out["file_name"] and "rent" not in out["file_name"], out["file_name"])
    return out["file_name"]


@case("leaks")
def the_audit_trail_holds_no_question_words(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    cli(home, "export", "--search", QUESTION, "--to", "Out")
    expect("Zanzibar" not in (home / "audit" / "audit.jsonl").read_text(), "in the trail")
    return "none"


@case("leaks")
def the_log_holds_no_question_words(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    cli(home, "export", "--search", QUESTION, "--to", "Out")
    text = "".join(p.read_text(errors="replace") for p in (home / "logs").glob("*.log*"))
    expect("Zanzibar" not in text, "in the log")
    return "none"


@case("leaks")
def the_outbox_holds_no_question_words_in_names(base: Path) -> str:
    allowed, _ = strict(base)
    home = base / "home"
    folder_dest(home, "Out", allowed)
    cli(home, "export", "--search", QUESTION, "--to", "Out")
    names = " ".join(p.read_text() for p in (home / "outbox").glob("*/item.json"))
    expect("Zanzibar" not in names, "in the outbox")
    return "none"


# --- 6. command line ---------------------------------------------------------------------------------
@case("cli")
def output_piped_into_head_is_no_traceback(base: Path) -> str:
    home = _trail(base, 2)
    env = dict(os.environ, SEALROOM_HOME=str(home))
    proc = subprocess.run(
        f"{PY} -m sealroom.core.cli audit -n 50 | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    expect("Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr[-200:])
    return "quiet"


@case("cli")
def outbox_retry_of_an_unknown_id_is_an_error(base: Path) -> str:
    policy("")
    return refused(cli(base / "home", "outbox", "retry", "zzzz"), "zzzz")


@case("cli")
def audit_show_with_a_negative_count_is_refused(base: Path) -> str:
    policy("")
    proc = cli(base / "home", "audit", "-n", "-5")
    expect(proc.returncode == 2, f"exit {proc.returncode}")
    return proc.stderr.strip().splitlines()[-1][:110]


# --- models --------------------------------------------------------------------------------------------
@case("models")
def a_model_file_the_policy_does_not_name_is_refused(base: Path) -> str:
    policy('allowed_model_sha256 = ["' + "ab" * 32 + '"]\n')
    home = base / "home"
    home.mkdir()
    fake = base / "other.gguf"  # a real GGUF (the default model's bytes) with other bytes at its end
    code = (
        "import sys, shutil; from pathlib import Path; from sealroom.models.catalogue import ModelCatalogue; "
        "src = ModelCatalogue(Path(sys.argv[1])).default().path; shutil.copy(src, sys.argv[2]); "
        "open(sys.argv[2], 'ab').write(bytes(32))"
    )
    subprocess.run([PY, "-c", code, str(base / "scratch"), str(fake)], check=True, cwd=ROOT)
    (home / "settings.toml").write_text(f'chat_model = "{fake}"\n')
    answer = ask_about_rent(base, home)
    problem = answer.get("model_problem", "")
    expect(not answer.get("called_model") and "allows" in problem, json.dumps(answer)[-300:])
    return problem[:110]


@case("models")
def a_forged_catalogue_entry_does_not_run_another_file(base: Path) -> str:
    home, fake = base / "home", base / "other.gguf"
    code = (
        "import sys, shutil, json; from pathlib import Path; from sealroom.models.catalogue import ModelCatalogue; "
        "c = ModelCatalogue(Path(sys.argv[1])); e = c.default(); shutil.copy(e.path, sys.argv[2]); "
        "open(sys.argv[2], 'ab').write(bytes(32)); "
        "d = json.loads(c.file.read_text()); d[0]['path'] = sys.argv[2]; d[0]['size'] = Path(sys.argv[2]).stat().st_size; "
        "c.file.write_text(json.dumps(d)); print(e.sha256)"
    )
    shipped = subprocess.run(
        [PY, "-c", code, str(home), str(fake)], check=True, cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    policy(f'allowed_model_sha256 = ["{shipped}"]\ncompact_default_model = false\n')
    answer = ask_about_rent(base, home)
    problem = answer.get("model_problem", "")
    expect("not the model" in problem, json.dumps(answer)[-300:])
    return problem[:110]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", default="", help="only cases whose name holds this")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inner:
        if os.geteuid() != 0:
            print("test-security runs as root (it mounts a private /etc/sealroom)", file=sys.stderr)
            return 2
        Path("/etc/sealroom").mkdir(parents=True, exist_ok=True)
        inner = [PY, __file__, "--inner", "-k", args.k]
        keyring = "printf keyring-unlock | gnome-keyring-daemon --unlock --components=secrets >/dev/null; "
        return subprocess.call(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "dbus-run-session",
                "--",
                "sh",
                "-c",
                keyring + 'mount -t tmpfs tmpfs /etc/sealroom && exec "$@"',
                "sh",
                *inner,
            ],
            env=dict(os.environ, HOME=str(WORK)),
        )
    tried = held = 0
    failed: list[str] = []
    for group, name, fn in CASES:
        if args.k not in name:
            continue
        base = WORK / name
        base.mkdir()
        tried += 1
        try:
            detail = fn(base)
            held += 1
            print(f"  held    {group:<12} {name}: {detail}", flush=True)
        except Exception as exc:
            failed.append(name)
            detail = f"{type(exc).__name__}: {exc}"
            print(f"  FAILED  {group:<12} {name}: {detail[:300]}", flush=True)
            if not isinstance(exc, AssertionError):
                traceback.print_exc()
        finally:
            SYSTEM.unlink(missing_ok=True)
    print(f"\ntried {tried} / held {held} / failed {len(failed)}")
    shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
