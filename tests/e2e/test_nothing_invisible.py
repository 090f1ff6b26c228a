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
    (folder / "fax.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
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
    assert files["fax.png"]["reason"] == "unsupported type (PNG image; OCR is not available)"
    assert files["sub/blob.bin"]["reason"] == "unsupported type (binary data)"
    assert "link to a folder" in files["elsewhere"]["reason"] and files["elsewhere"]["status"] == "skipped"
    assert "link loop" in files["loop"]["reason"]
    assert sum(status["counts"].values()) == len(listed)  # the counts add up to what is in the folder

    hits = cli_json(home, "search", "Harbourside referral templates", "-k", "1")["hits"]
    assert Path(hits[0]["path"]).name == "LICENSE"
