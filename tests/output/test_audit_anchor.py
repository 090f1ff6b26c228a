"""Issue 24: an audit trail that shows erasure and rollback (an anchor in the real Secret Service keyring,
gnome-keyring in dbus-run-session), and routine crashes that never look like tampering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sealroom.core.output.audit import AuditTrail


def _trail(home: Path, n: int = 5) -> AuditTrail:
    trail = AuditTrail(home)
    for i in range(n):
        trail.record("question_asked", chat_id=i, question_sha256=f"{i:064d}")
    result = trail.verify()
    assert result.ok and result.signed == n and "anchor" in result.checked, result.message
    return trail


@pytest.fixture
def trail(tmp_path: Path, secret_service: str) -> AuditTrail:
    return _trail(tmp_path / "home")


def test_a_deleted_audit_folder_fails_verify(trail: AuditTrail):
    shutil.rmtree(trail.dir)
    result = AuditTrail(trail.dir.parent).verify()
    assert not result.ok and "missing" in result.message


def test_a_trail_rolled_back_to_an_older_head_fails_verify_and_stays_failed(trail: AuditTrail):
    old_head, old_lines = trail.head_path.read_text(), trail.path.read_text().splitlines()[:3]
    old_head = json.dumps({**json.loads(old_head), "seq": 3, "hash": json.loads(old_lines[-1])["hash"]})
    trail.record("export_delivered", destination="Legal")
    # keep an older head, cut the trail back to it (records 4-6 go), restore it; the head's signature is
    # recomputed too (the user can read their own keyring's key): only the anchor can tell
    import hmac

    from sealroom.core.output.audit import _canonical

    body = {k: v for k, v in json.loads(old_head).items() if k != "mac"}
    body["mac"] = hmac.new(trail.key(create=False) or b"", _canonical(body), "sha256").hexdigest()
    trail.head_path.write_text(json.dumps(body))
    trail.path.write_text("".join(line + "\n" for line in old_lines))
    fresh = AuditTrail(trail.dir.parent)
    result = fresh.verify()
    assert not result.ok and "rolled back" in result.message and "record 6" in result.message
    fresh.record("question_asked", chat_id=9)  # the app writes on: it finds the rollback and records it
    assert [r["event"] for r in fresh.records()][-2:] == ["audit_rollback_detected", "question_asked"]
    result = AuditTrail(trail.dir.parent).verify()
    assert not result.ok and "rolled back" in result.message  # and the anchor keeps saying so


def test_a_whole_trail_replaced_by_a_fresh_valid_one_fails_verify(trail: AuditTrail, tmp_path: Path):
    other = AuditTrail(tmp_path / "other-home", use_keyring=False)
    for i in range(6):
        other.record("question_asked", chat_id=i)
    shutil.copy(other.path, trail.path)
    shutil.copy(other.head_path, trail.head_path)
    result = AuditTrail(trail.dir.parent).verify()
    assert not result.ok


def test_a_forged_append_without_the_key_fails_verify(trail: AuditTrail):
    unkeyed = AuditTrail(trail.dir.parent, use_keyring=False)
    unkeyed._last = {}  # a forger who does not mark the record as written without a keyring
    unkeyed._append(unkeyed._head(), None, None, "export_delivered", {"destination": "x"})
    result = AuditTrail(trail.dir.parent).verify()
    assert not result.ok and "lost its signature" in result.message


def test_the_anchor_removed_from_the_keyring_fails_verify(trail: AuditTrail):
    from sealroom.core.output.audit import ANCHOR_ACCOUNT
    from sealroom.core.runtime import secrets_store

    secrets_store.delete(ANCHOR_ACCOUNT, trail._scope())
    result = AuditTrail(trail.dir.parent).verify()
    assert not result.ok and "anchor" in result.message


def test_a_record_cut_short_by_a_kill_is_recovered_and_noted(trail: AuditTrail):
    with open(trail.path, "ab") as f:
        f.write(b'{"seq":6,"time":"2026-12-06T')  # killed mid-write
    result = AuditTrail(trail.dir.parent).verify()
    assert result.ok and "cut short" in result.message, result.message
    again = AuditTrail(trail.dir.parent)
    again.record("question_asked", chat_id=7)
    events = [r["event"] for r in again.records()]
    assert events[-2:] == ["audit_recovered", "question_asked"]
    result = again.verify()
    assert result.ok and result.records == 7 and "cut short" not in result.message


def test_a_head_one_record_behind_is_moved_on_and_noted(trail: AuditTrail):
    head = trail.head_path.read_text()
    trail.record("question_asked", chat_id=6)
    trail.head_path.write_text(head)  # killed between the record and the head
    assert AuditTrail(trail.dir.parent).verify().ok
    again = AuditTrail(trail.dir.parent)
    again.record("question_asked", chat_id=7)
    assert [r["event"] for r in again.records()][-2:] == ["audit_recovered", "question_asked"]
    result = again.verify()
    assert result.ok and result.records == 8 and result.signed == 8


def test_records_written_without_a_keyring_are_noted_not_broken(trail: AuditTrail):
    AuditTrail(trail.dir.parent, use_keyring=False).record("question_asked", chat_id=6)
    result = AuditTrail(trail.dir.parent).verify()
    assert result.ok and "1 written while no keyring answered" in result.message, result.message
    AuditTrail(trail.dir.parent).record("question_asked", chat_id=7)  # the keyring is back
    result = AuditTrail(trail.dir.parent).verify()
    assert result.ok and result.signed == 6, result.message


def test_verify_without_a_keyring_says_what_it_did_not_check(trail: AuditTrail):
    result = AuditTrail(trail.dir.parent, use_keyring=False).verify()
    assert result.ok and result.not_checked == ("signatures", "anchor") and "NOT checked" in result.message
