"""Issue 24: what IT decides holds against the user it binds: destinations judged by what they point at,
writers that never follow links planted in a shared folder, refusals that stop retries (real files)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from sealroom.core.output.destinations import NOT_A_FILE, Destination, FolderWriter, Refused, check_policy
from sealroom.core.output.outbox import Outbox
from sealroom.core.runtime.config import Settings
from tests.fakes import RefusingWriter


def test_a_link_inside_an_allowed_folder_is_judged_by_where_it_leads(tmp_path: Path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir(), outside.mkdir()
    (allowed / "link").symlink_to(outside)
    policy = Settings(export_destinations=[f"{allowed}/*", str(allowed)])
    check_policy(Destination("Mine", "folder", path=str(allowed / "sub")), policy)
    with pytest.raises(Refused, match="not among"):
        check_policy(Destination("Mine", "folder", path=str(allowed / "link")), policy)
    with pytest.raises(Refused, match="not among"):  # the name the user picks never counts
        check_policy(
            Destination("Legal", "folder", path=str(outside)), Settings(export_destinations=["Legal"])
        )


def test_a_link_planted_at_the_temporary_or_final_name_is_never_followed(tmp_path: Path):
    share, victim = tmp_path / "share", tmp_path / "victim.txt"
    share.mkdir()
    victim.write_text("keep me")
    victim.chmod(0o600)
    (share / "answer.md").symlink_to(victim)  # the predictable final name
    (share / ".answer.md.part").symlink_to(victim)  # the old predictable temporary name
    w = FolderWriter(Destination("S", "folder", path=str(share)))
    assert w.existing_sha256("answer.md") == NOT_A_FILE
    assert w.put("answer.md", b"exported") is False  # the name is taken; nothing written through it
    assert victim.read_text() == "keep me" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert w.put("answer-2.md", b"exported") is True
    assert (share / "answer-2.md").read_bytes() == b"exported"
    assert sorted(p.name for p in share.iterdir()) == [".answer.md.part", "answer-2.md", "answer.md"]
    w.close()


def test_a_fifo_at_the_final_name_neither_hangs_nor_fails_the_export(tmp_path: Path):
    share = tmp_path / "share"
    share.mkdir()
    os.mkfifo(share / "r.md")
    box = Outbox(tmp_path / "home")
    item = box.add("S", "r.md", b"data", "answer", "answer 1")
    dest = Destination("S", "folder", path=str(share))
    box.deliver(lambda name: dest, lambda d: None)
    done = box.get(item.id)
    assert done.status == "delivered" and done.delivered_as != "r.md"
    assert (share / done.delivered_as).read_bytes() == b"data"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_destination_fails_with_its_reason_and_stops_retrying(tmp_path: Path):
    _read_only_case(tmp_path)


def test_a_read_only_destination_fails_with_its_reason_as_any_user(tmp_path: Path):
    """As root (CI), a read-only bind of the folder is what refuses; elsewhere the mode does."""
    if os.geteuid() != 0:
        pytest.skip("covered by the mode test")
    share = tmp_path / "share"
    share.mkdir()
    import subprocess

    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespaces here")
    runner = tmp_path / "case.py"
    runner.write_text(
        "import sys\nfrom pathlib import Path\n"
        f"sys.path[:0] = {sys.path!r}\n"
        "from tests.output.test_trust import _read_only_case\n"
        f"_read_only_case(Path({str(tmp_path)!r}), made=True)\n"
    )
    script = f"mount --bind {share} {share} && mount -o remount,bind,ro {share} && {sys.executable} {runner}"
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def _read_only_case(tmp_path: Path, made: bool = False) -> None:
    share = tmp_path / "share"
    if not made:
        share.mkdir()
        share.chmod(0o555)
    box = Outbox(tmp_path / "home")
    items = [box.add("S", f"r{i}.md", b"data", "answer", f"answer {i}") for i in range(3)]
    dest = Destination("S", "folder", path=str(share))
    box.deliver(lambda name: dest, lambda d: None)
    for item in items:
        failed = box.get(item.id)
        assert failed.status == "failed", failed
        assert "read-only" in failed.reason or "permission denied" in failed.reason
    assert (box.dir / items[0].id / "payload").read_bytes() == b"data"  # kept for a retry


@pytest.mark.parametrize(("folder_mode", "file_mode"), [(0o755, 0o644), (0o2770, 0o660), (0o700, 0o600)])
def test_an_export_takes_the_permissions_its_folder_gives(tmp_path: Path, folder_mode: int, file_mode: int):
    share = tmp_path / "share"
    share.mkdir()
    share.chmod(folder_mode)
    w = FolderWriter(Destination("S", "folder", path=str(share)))
    assert w.put("a.md", b"x")
    w.close()
    assert stat.S_IMODE((share / "a.md").stat().st_mode) == file_mode


def test_a_refused_destination_is_tried_once_per_round_not_once_per_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A wrong password is one failed login, not one per waiting export (domain lockout policies count them)."""
    import sealroom.core.output.outbox as outbox_module

    refusing = RefusingWriter()
    box = Outbox(tmp_path / "home")
    items = [box.add("Legal", f"r{i}.md", b"data", "answer", f"answer {i}") for i in range(6)]
    dest = Destination("Legal", "smb", host="files", share="legal", user="u")
    monkeypatch.setattr(outbox_module, "writer", lambda d: refusing)
    box.deliver(lambda name: dest, lambda d: None)
    assert len(refusing.tries) == 1
    assert all(box.get(i.id).status == "failed" and "password" in box.get(i.id).reason for i in items)
