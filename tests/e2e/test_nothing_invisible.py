"""No file in a watched folder is invisible (issue 26): every entry gets a status and, if not indexed, a
reason, in `status` and in the folder's counts; a text file without an extension is indexed and found."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import CORPUS, PDFS, cli, cli_json

LICENSE = "Permission is hereby granted to the Harbourside Clinic to copy the referral templates.\n" * 3


def test_every_entry_has_a_status_and_text_without_an_extension_is_searchable(home: Path, tmp_path: Path):
    folder = tmp_path / "matter"
    (folder / "sub").mkdir(parents=True)
    (folder / "LICENSE").write_text(LICENSE)
    (folder / "README").write_text("Read me first: the intake forms are in the sub folder.\n")
    (folder / "minutes.log").write_text("Board minutes: the audit committee met on 3 May.\n")
    (folder / "scan-0042").write_bytes((PDFS / "001-trivial" / "minimal-document.pdf").read_bytes())
    (folder / "contract-final").write_bytes((CORPUS / "docx-samples" / "test.docx").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "sub" / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "elsewhere").symlink_to(tmp_path, target_is_directory=True)  # a link to a folder
    (folder / "loop").symlink_to(folder / "loop")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: no one's document
    (folder / "~$contract.docx").write_bytes(b"lock")  # an editor's lock file
    cli(home, "add", str(folder))
    cli(home, "index", timeout=300)

    status = cli_json(home, "status")
    files = {os.path.relpath(f["path"], folder): f for f in status["files"]}
    listed = {
        os.path.relpath(os.path.join(d, n), folder)
        for d, dirs, names in os.walk(folder)
        for n in names + [x for x in dirs if os.path.islink(os.path.join(d, x))]
        if not n.startswith((".", "~$"))
    }
    assert set(files) == listed  # every entry of the folder but the hidden and lock files, none missing
    for name in ("LICENSE", "README", "minutes.log", "scan-0042", "contract-final"):
        assert files[name]["status"] == "indexed", files[name]
    assert files["broken.png"]["reason"].startswith("damaged image")
    assert files["sub/blob.bin"]["reason"] == "unsupported type (binary data)"
    assert "link to a folder" in files["elsewhere"]["reason"] and files["elsewhere"]["status"] == "skipped"
    assert "link loop" in files["loop"]["reason"]
    assert sum(status["counts"].values()) == len(listed)  # the counts add up to what is in the folder

    hits = cli_json(home, "search", "Harbourside referral templates", "-k", "1")["hits"]
    assert Path(hits[0]["path"]).name == "LICENSE"


def test_one_file_of_each_new_type_is_indexed_and_found(home: Path, tmp_path: Path):
    import pypdfium2

    from bench.scans import degrade, render
    from tests.core.test_ocr import FOUR_PAGES
    from tests.core.test_office import MSGS, RTF, make_odf, make_pptx, make_xlsx

    folder = tmp_path / "office"
    folder.mkdir()
    make_xlsx(folder / "retention.xlsx")
    make_pptx(folder / "review.pptx")
    make_odf(folder / "agreement.odt", "odt")
    make_odf(folder / "fees.ods", "ods")
    make_odf(folder / "intake.odp", "odp")
    (folder / "nda.rtf").write_text(RTF)
    (folder / "message.msg").write_bytes((MSGS / "strangeDate.msg").read_bytes())
    degrade(render(pypdfium2.PdfDocument(FOUR_PAGES), 0, 200), seed=3).save(folder / "scan.png")
    (folder / "NOTICE").write_text("Harbourside Clinic keeps referral letters for eight years.\n")
    cli(home, "add", str(folder))
    cli(home, "index", timeout=600)
    files = {Path(f["path"]).name: f for f in cli_json(home, "status")["files"]}
    assert {n: f["status"] for n, f in files.items()} == dict.fromkeys(os.listdir(folder), "indexed")
    expected = {
        "Audit logs kept 10 years after the contract ends": ("retention.xlsx", "Retention, rows"),
        "notify the DPO within 72 hours": ("review.pptx", "Slide 2: Data breach drill"),
        "end this agreement with 90 days written notice": ("agreement.odt", "Termination"),
        "probate fee": ("fees.ods", "Fees, rows 2–3"),
        "call the duty solicitor": ("intake.odp", "Slide 2"),
        "information confidential for five years": ("nda.rtf", None),
        "Jane Roe for females": ("message.msg", "MSG Test File"),
        "blind text gives you information about the selected font": ("scan.png", "OCR text, confidence"),
        "referral letters eight years": ("NOTICE", None),
    }
    for query, (name, heading) in expected.items():
        hits = cli_json(home, "search", query, "-k", "3")["hits"]
        top = next(h for h in hits if Path(h["path"]).name == name)  # found among the first three
        assert heading is None or (top["heading"] or "").startswith(heading), (query, top)


def test_a_scanned_pdf_is_read_by_ocr_after_the_text_documents(home: Path, tmp_path: Path):
    from bench.scans import scanned_copy
    from sealroom.core.engine import Engine
    from tests.core.test_ocr import FOUR_PAGES

    folder = tmp_path / "inbox"
    folder.mkdir()
    scanned_copy(FOUR_PAGES, folder / "a-scanned-contract.pdf", dpi=200)  # first by name and by queue
    for n in range(4):
        (folder / f"note-{n}.txt").write_text(f"Meeting note {n}: the lease renewal is due in March.\n")
    order: list[str] = []
    with Engine(home) as engine:
        engine.emit = lambda e: (
            order.append(Path(str(e["path"])).name) if e.get("event") == "indexed" else None
        )
        engine.add_folder(str(folder))
        engine.index()
        rows = {Path(r.path).name: r for r in engine.catalog.files()}
    assert order[-1] == "a-scanned-contract.pdf" and sorted(order[:-1]) == [f"note-{n}.txt" for n in range(4)]
    assert rows["a-scanned-contract.pdf"].status == "indexed" and rows["a-scanned-contract.pdf"].pages == 4
