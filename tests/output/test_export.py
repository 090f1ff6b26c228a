"""Export documents, file names, the outbox and the audit chain, on real files (no network)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import docx
import pytest

from sealroom.core.output import render as exp
from sealroom.core.output.audit import AuditTrail
from sealroom.core.output.destinations import Destination, FolderWriter, Refused, check_policy
from sealroom.core.output.outbox import Outbox
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import SealroomError

from .records import answer_record

TRAVERSAL = [
    "../../etc/passwd",
    "..\\..\\windows\\system32\\config",
    "/etc/shadow",
    "\\\\server\\share\\x",
    "C:\\Windows\\win.ini",
    "C:evil",
    "D:/data/x",
    "..",
    ".",
    "...",
    "./../x",
    "a/../../b",
    "a\\..\\..\\b",
    "name\0.txt",
    "\0",
    "%2e%2e%2f%2e%2e%2fetc",
    "..%c0%af..%c0%afetc",
    "．．／．．／etc",  # full-width dots and slash
    "‥/x",
    "CON",
    "con.txt",
    "PRN",
    "AUX",
    "NUL.md",
    "COM1",
    "LPT9",
    "a" * 5000,
    "é" * 3000,
    "../" * 200 + "x",
    "~/.ssh/authorized_keys",
    "$HOME/.bashrc",
    "`rm -rf /`",
    "$(reboot)",
    "-rf",
    "--help",
    " ",
    "",
    "\n\r\t",
    "x\nContent-Type: evil",
    "file\u202egnp.exe",
    "dir/",
    "\\",
    "/",
    "//",
    "\\\\?\\C:\\x",
    "\\\\.\\PhysicalDrive0",
    "x:" * 40,
    "name:stream",
    'a|b<c>d"e*f?g',
    "\udce9\udcff.txt",
    ".hidden",
    ".. .. ..",
    "trailing dot.",
    "trailing space ",
]


@pytest.mark.parametrize("fmt", ["md", "docx", "json"])
def test_every_traversal_payload_stays_inside_the_destination(tmp_path: Path, fmt: str):
    dest_dir = tmp_path / "share" / "exports"
    dest_dir.mkdir(parents=True)
    w = FolderWriter(Destination("Share", "folder", path=str(dest_dir)))
    names = set()
    for n, payload in enumerate(TRAVERSAL):
        name = exp.file_name("chat", str(n), payload, fmt)
        assert w.put(name, payload.encode("utf-8", "surrogateescape")), name
        names.add(name)
        assert len(name.encode()) <= 200 and "/" not in name and "\\" not in name and "\0" not in name
        stem = name.rsplit(".", 1)[0].split("-", 5)[-1]
        assert stem.split("-")[0].upper() not in exp.WINDOWS_RESERVED
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == {f"share/exports/{n}" for n in names}
    assert len(names) == len(TRAVERSAL)  # each payload its own file: none collapsed onto another


def test_the_writer_refuses_a_raw_path_even_if_a_caller_forgets_to_sanitise(tmp_path: Path):
    dest_dir = tmp_path / "exports"
    dest_dir.mkdir()
    w = FolderWriter(Destination("Share", "folder", path=str(dest_dir)))
    for payload in ["../x", "/etc/x", "a/b", "a\\b", "..", ".", "C:x", "x\0y", ""]:
        with pytest.raises(SealroomError, match="unsafe"):
            w.put(payload, b"data")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def _doc(include: bool = True) -> dict:
    item = exp.answer_item(answer_record(10), 7, include)
    return exp.document("answer", "What are the terms of the lease?", "Case 12", include, answers=[item])


def test_json_export_is_the_versioned_document_with_every_citation():
    doc = json.loads(exp.render(_doc(), "json"))
    assert doc["schema"] == "sealroom-export" and doc["schema_version"] == 1
    assert doc["kind"] == "answer" and doc["workspace"] == "Case 12" and doc["sealroom_version"]
    answer = doc["answers"][0]
    assert answer["answer_id"] == 7 and answer["question"].startswith("What are the terms")
    assert [c["n"] for c in answer["citations"]] == list(range(1, 11))
    assert answer["citations"][4] == {
        "n": 5,
        "path": "/docs/contracts/lease-5.pdf",
        "page": 6,
        "text": "Clause 5: the tenant pays 1005 euros on the first day of each month.",
    }
    assert answer["model"]["sha256"].startswith("a5fd3b62") and answer["embedding_model"].startswith(
        "all-MiniLM"
    )
    assert answer["flags"]["unsupported_sentences"] == ["The landlord is Mr Smith [2]."]
    assert answer["flags"]["matched_citations"] == [1]


def test_word_export_has_headings_the_answer_and_a_numbered_sources_table():
    d = docx.Document(io.BytesIO(exp.render(_doc(), "docx")))
    headings = [p.text for p in d.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    assert headings[:2] == ["What are the terms of the lease?"] * 2 and "Sources" in headings
    body = "\n".join(p.text for p in d.paragraphs)
    assert "The tenant pays monthly [1]." in body and "sha256 a5fd3b62" in body
    table = d.tables[0]
    assert [c.text for c in table.rows[0].cells] == ["#", "File", "Page", "Passage"]
    assert len(table.rows) == 11
    assert [c.text for c in table.rows[3].cells][:3] == ["3", "/docs/contracts/lease-3.pdf", "4"]
    assert "1003 euros" in table.rows[3].cells[3].text


def test_markdown_export_numbers_sources_with_file_page_and_passage():
    md = exp.render(_doc(), "md").decode()
    assert md.startswith("# What are the terms of the lease?\n")
    assert "10. `/docs/contracts/lease-10.pdf, page 11`\n   > Clause 10: the tenant pays 1010 euros" in md
    assert "1 generated sentence(s) not found in the sources were left out" in md
    assert "Chat model: gemma-3-270m-q4_k_m.gguf (sha256 a5fd3b62" in md


def test_an_answer_made_without_the_chat_model_says_why_in_the_export():
    record = answer_record(2)
    record.update(finish_reason="no_model", model_problem="x.gguf is not on the list", called_model=False)
    record["verification"] = {"shown": [], "dropped": []}
    doc = exp.document("answer", "q", "Case 12", True, answers=[exp.answer_item(record, 7, True)])
    note = "The chat model was not used: x.gguf is not on the list. The quotes are the answer."
    assert note in exp.render(doc, "md").decode()
    assert note in [p.text for p in docx.Document(io.BytesIO(exp.render(doc, "docx"))).paragraphs]


@pytest.mark.parametrize("fmt", ["md", "docx", "json"])
def test_references_only_policy_leaves_no_passage_text_in_any_format(fmt: str):
    data = exp.render(_doc(include=False), fmt)
    text = (
        data.decode()
        if fmt != "docx"
        else "\n".join(
            [p.text for p in docx.Document(io.BytesIO(data)).paragraphs]
            + [c.text for t in docx.Document(io.BytesIO(data)).tables for r in t.rows for c in r.cells]
        )
    )
    assert "tenant pays 10" not in text and "Mr Smith" not in text
    assert "lease-10.pdf" in text  # the references stay


def test_outbox_same_export_is_one_item_and_delivery_never_overwrites(tmp_path: Path):
    dest_dir = tmp_path / "share"
    dest_dir.mkdir()
    dest = Destination("Share", "folder", path=str(dest_dir))
    box = Outbox(tmp_path / "home")
    a = box.add("Share", "report.md", b"first", "answer", "answer 1")
    assert box.add("Share", "report.md", b"first", "answer", "answer 1").id == a.id
    (dest_dir / "report.md").write_bytes(b"a colleague's file")
    b = box.add("Share", "report.md", b"second", "answer", "answer 2")
    box.deliver(lambda name: dest, lambda d: None)
    assert (dest_dir / "report.md").read_bytes() == b"a colleague's file"
    files = {p.name: p.read_bytes() for p in dest_dir.iterdir()}
    assert files == {
        "report.md": b"a colleague's file",
        "report (2).md": b"first",
        "report (3).md": b"second",
    }
    assert {i.id: i.delivered_as for i in box.items()} == {a.id: "report (2).md", b.id: "report (3).md"}
    assert not (box.dir / a.id / "payload").exists()  # delivered: no second copy kept
    box.retry()
    box.deliver(lambda name: dest, lambda d: None, force=True)
    assert len(list(dest_dir.iterdir())) == 3  # delivered items are never sent again
    assert not [p for p in dest_dir.iterdir() if p.name.endswith(".part")]


def test_a_file_already_there_with_the_same_bytes_counts_as_delivered(tmp_path: Path):
    """A crash after the write, before the outbox noted it: the next try must not make a copy."""
    dest_dir = tmp_path / "share"
    dest_dir.mkdir()
    box = Outbox(tmp_path / "home")
    item = box.add("Share", "report.md", b"same", "answer", "answer 1")
    (dest_dir / "report.md").write_bytes(b"same")
    box.deliver(lambda name: Destination("Share", "folder", path=str(dest_dir)), lambda d: None)
    assert [p.name for p in dest_dir.iterdir()] == ["report.md"]
    assert box.get(item.id).status == "delivered"


def test_missing_folder_waits_with_backoff_and_keeps_the_payload(tmp_path: Path):
    dest = Destination("Stick", "folder", path=str(tmp_path / "unplugged"))
    box = Outbox(tmp_path / "home")
    item = box.add("Stick", "r.md", b"data", "answer", "answer 1")
    box.deliver(lambda name: dest, lambda d: None)
    waiting = box.get(item.id)
    assert waiting.status == "pending" and "not there" in waiting.reason and waiting.next_try > 0
    assert (box.dir / item.id / "payload").read_bytes() == b"data"
    assert box.deliver(lambda name: dest, lambda d: None) == []  # not due yet
    (tmp_path / "unplugged").mkdir()
    box.deliver(lambda name: dest, lambda d: None, force=True)
    assert box.get(item.id).status == "delivered"
    assert (tmp_path / "unplugged" / "r.md").read_bytes() == b"data"


def test_policy_refuses_destinations_formats_and_hosts():
    smb = Destination("Legal", "smb", path="x", host="files.example.org", share="legal", user="u")
    folder = Destination("Mine", "folder", path="/mnt/legal/out")
    with pytest.raises(Refused, match="allowed_hosts"):
        check_policy(smb, Settings())
    check_policy(smb, Settings(allowed_hosts=["FILES.example.org"]))
    with pytest.raises(
        Refused, match="not among"
    ):  # a destination's name is the user's to pick: it never counts
        check_policy(smb, Settings(allowed_hosts=["files.example.org"], export_destinations=["Legal"]))
    with pytest.raises(Refused, match="turned off"):
        check_policy(folder, Settings(export_enabled=False))
    with pytest.raises(Refused, match="not among"):
        check_policy(folder, Settings(export_destinations=["Legal", "//files.example.org/*"]))
    check_policy(folder, Settings(export_destinations=["/mnt/legal/*"]))
    check_policy(
        smb, Settings(allowed_hosts=["files.example.org"], export_destinations=["//files.example.org/*"])
    )


def _trail(tmp_path: Path, n: int = 6) -> AuditTrail:
    trail = AuditTrail(tmp_path / "home", use_keyring=False)
    for i in range(n):
        trail.record("question_asked", chat_id=i, question_sha256=hashlib.sha256(str(i).encode()).hexdigest())
    assert trail.verify().ok
    return trail


def _lines(trail: AuditTrail) -> list[str]:
    return trail.path.read_text().splitlines()


def test_audit_chain_catches_an_edited_record(tmp_path: Path):
    trail = _trail(tmp_path)
    lines = _lines(trail)
    lines[2] = lines[2].replace('"chat_id":2', '"chat_id":9')
    trail.path.write_text("\n".join(lines) + "\n")
    result = trail.verify()
    assert not result.ok and result.broken_seq == 3 and "changed" in result.message


def test_audit_chain_catches_a_deleted_record(tmp_path: Path):
    trail = _trail(tmp_path)
    lines = _lines(trail)
    del lines[3]
    trail.path.write_text("\n".join(lines) + "\n")
    result = trail.verify()
    assert not result.ok and result.broken_seq == 4 and "deleted" in result.message


def test_audit_chain_catches_reordered_records(tmp_path: Path):
    trail = _trail(tmp_path)
    lines = _lines(trail)
    lines[1], lines[2] = lines[2], lines[1]
    trail.path.write_text("\n".join(lines) + "\n")
    result = trail.verify()
    assert not result.ok and result.broken_seq == 2


def test_audit_chain_catches_a_cut_tail(tmp_path: Path):
    trail = _trail(tmp_path)
    trail.path.write_text("\n".join(_lines(trail)[:4]) + "\n")
    result = trail.verify()
    assert not result.ok and "cut" in result.message and result.broken_seq == 5


def test_audit_chain_catches_a_recomputed_chain_only_with_a_key(tmp_path: Path):
    """Without a key an editor who recomputes every hash passes (that is what the HMAC is for)."""
    trail = _trail(tmp_path)
    _forge(trail, 1)
    assert trail.verify().ok  # no key: chain-only evidence, as documented


def _forge(trail: AuditTrail, index: int) -> None:
    from sealroom.core.output.audit import GENESIS, _canonical

    records = [json.loads(line) for line in _lines(trail)]
    records[index]["data"]["chat_id"] = 99
    prev = GENESIS
    for r in records:
        r.pop("mac", None)
        r["prev"] = prev
        r["hash"] = hashlib.sha256(_canonical(r)).hexdigest()
        prev = r["hash"]
    trail.path.write_text("".join(json.dumps(r) + "\n" for r in records))
    trail.head_path.write_text(
        json.dumps({"seq": records[-1]["seq"], "hash": prev, "base_seq": 1, "base_prev": GENESIS})
    )


def test_pruning_old_records_keeps_the_chain_verifiable(tmp_path: Path):
    trail = _trail(tmp_path)
    lines = [json.loads(line) for line in _lines(trail)]
    for r in lines[:3]:  # pretend the first three are old (their hashes stay as written)
        r["ts"] -= 400 * 86400
    from sealroom.core.output.audit import _canonical

    prev = lines[0]["prev"]
    for r in lines:
        r["prev"] = prev
        r["hash"] = hashlib.sha256(_canonical(r)).hexdigest()
        prev = r["hash"]
    trail.path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    trail.head_path.write_text(
        json.dumps({"seq": 6, "hash": prev, "base_seq": 1, "base_prev": lines[0]["prev"]})
    )
    assert trail.verify().ok
    assert trail.prune(365) == 3
    result = trail.verify()
    assert result.ok and result.records == 4  # three kept + the record of the pruning
    assert [r["event"] for r in trail.records()][-1] == "audit_pruned"


def test_audit_records_never_hold_document_text_or_questions_by_default(tmp_path: Path, monkeypatch):
    from sealroom.core.engine import Engine

    monkeypatch.setenv("SEALROOM_POLICY", str(tmp_path / "none.toml"))
    from .records import store_answer

    with Engine(tmp_path / "home") as engine:
        _, answer = store_answer(engine)
        dest = tmp_path / "out"
        dest.mkdir()
        dest.chmod(0o755)  # a folder colleagues read: the export is readable by them too
        engine.output.add_destination("Out", folder=str(dest))
        result = engine.output.export("Out", "md", answer_id=answer)
        assert result.delivered
        trail = (tmp_path / "home" / "audit" / "audit.jsonl").read_text()
    assert "tenant pays" not in trail and "Clause" not in trail  # no document text
    assert "What are the terms of the lease?" not in trail  # the question as a hash (the file name is kept)
    events = [json.loads(line)["event"] for line in trail.splitlines()]
    assert events[-3:] == ["destination_added", "export_queued", "export_delivered"]
    assert os.stat(dest / result.item.delivered_as).st_mode & 0o044 == 0o044


def test_a_citation_says_where_beyond_the_page_and_that_ocr_read_it():
    record = answer_record(2)
    record["citations"][0] |= {"path": "/docs/scan.pdf", "page": 2, "heading": "OCR text, confidence 91 %"}
    record["citations"][1] |= {"path": "/docs/fees.xlsx", "page": None, "heading": "Fees, rows 2–3"}
    doc = exp.document("answer", "Fees?", "Case 12", True, answers=[exp.answer_item(record, 7, True)])
    md = exp.render(doc, "md").decode()
    assert "`/docs/scan.pdf, page 2 — OCR text, confidence 91 %`" in md
    assert "`/docs/fees.xlsx — Fees, rows 2–3`" in md
    assert json.loads(exp.render(doc, "json"))["answers"][0]["citations"][1]["heading"] == "Fees, rows 2–3"
    rows = docx.Document(io.BytesIO(exp.render(doc, "docx"))).tables[0].rows
    assert [c.text for c in rows[1].cells][:3] == ["1", "/docs/scan.pdf", "2 — OCR text, confidence 91 %"]


def test_an_answer_exported_alone_has_its_question_once_and_its_notes():
    record = answer_record(2)
    record["verification"] = {"shown": [], "dropped": []}
    alone = exp.document(
        "answer", record["question"], "default", True, answers=[exp.answer_item(record, 7, True)]
    )
    md = exp.render(alone, "md").decode()
    assert md.count(record["question"]) == 1 and "\n## " not in md  # the title is the question
    assert "> The quotes are the answer: no generated sentence could be checked against them." in md
    chat = exp.document("chat", "Lease", "default", True, answers=[exp.answer_item(record, 7, True)] * 2)
    assert exp.render(chat, "md").decode().count(f"## {record['question']}") == 2  # a chat heads each
