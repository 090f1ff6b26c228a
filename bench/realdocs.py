"""The real-document eval corpora: documents nobody on this project wrote, from Debian's packages.

    .venv/bin/python bench/realdocs.py build    # (re)make bench/eval/real/docs from the pinned packages
    .venv/bin/python bench/realdocs.py check    # every committed document matches its recorded sha256
    .venv/bin/python bench/realdocs.py split questions-*.jsonl   # once: merge and draw dev/test (seeded)

Three corpora, each a different shape (see bench/eval/real/README.md):
- ``manual-pdf``: PostgreSQL 15's chapters on data types, server configuration and client authentication, printed to one
  PDF by headless Chromium (numbered sections, many tables, the browser's running header and footer);
- ``manual-html``: pages of Python 3.11's library reference and its command-line page, as shipped (HTML);
- ``versions``: near-identical versions of the same legal texts (GPL 2/3, LGPL 2/2.1/3, GFDL 1.2/1.3,
  MPL 1.1/2.0, Apache 2.0) from Debian's base-files, two of them turned into DOCX.

The documents are committed (4 MB) so a plain clone evaluates offline; `build` shows where each came from
and writes `sources.json` (package, version, path in the package, sha256 of the file we keep). A printed
PDF differs by its creation date from one build to the next, so `check` verifies what is committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "bench" / "eval" / "real"
DOCS = REAL / "docs"
SOURCES = REAL / "sources.json"
QUESTIONS = REAL / "questions.jsonl"
SEED = (
    23  # the draw is made once, with this seed; the questions were written before Sealroom saw the documents
)
CORPUS_OF = {"pdf": "manual-pdf", "html": "manual-html", "ver": "versions"}

PACKAGES = {
    "postgresql-doc-15": "15.20-0+deb12u1",
    "python3.11-doc": "3.11.2-6+deb12u9",
    "base-files": "12.4+deb12u15",
}
PG_HTML = "usr/share/doc/postgresql-doc-15/html"
PG_CHAPTERS = ["datatype.html", "runtime-config.html", "client-authentication.html"]
PY_HTML = "usr/share/doc/python3.11/html"
PY_PAGES = [
    "library/datetime.html",
    "library/pathlib.html",
    "library/logging.handlers.html",
    "library/argparse.html",
    "library/subprocess.html",
    "library/json.html",
    "library/sqlite3.html",
    "library/zipfile.html",
    "library/hashlib.html",
    "using/cmdline.html",
]
LICENCES = "usr/share/common-licenses"
LICENCE_FILES = {
    "GPL-2": "gpl-2.txt",
    "GPL-3": "gpl-3.txt",
    "LGPL-2": "lgpl-2.txt",
    "LGPL-2.1": "lgpl-2.1.docx",
    "LGPL-3": "lgpl-3.txt",
    "GFDL-1.2": "gfdl-1.2.txt",
    "GFDL-1.3": "gfdl-1.3.docx",
    "MPL-1.1": "mpl-1.1.txt",
    "MPL-2.0": "mpl-2.0.txt",
    "Apache-2.0": "apache-2.0.txt",
}
LICENCE_OF = {
    "postgresql-doc-15": "PostgreSQL Licence (permissive; see the package's copyright file)",
    "python3.11-doc": "PSF Licence Agreement for Python 3.11 (documentation)",
    "base-files": "the licence texts themselves permit verbatim copying",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack(package: str, version: str, into: Path) -> Path:
    subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=into, check=True)
    deb = next(into.glob(f"{package}_*.deb"))
    root = into / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def chapter_pages(html_dir: Path, chapter: str) -> list[str]:
    """The chapter's page and the pages its table of contents lists, in order."""
    text = (html_dir / chapter).read_text(encoding="utf-8")
    toc = text.split('<div class="toc">', 1)[1].split("</div>", 1)[0]
    pages = [chapter]
    for href in re.findall(r'href="([a-z0-9-]+\.html)', toc):
        if href not in pages:
            pages.append(href)
    return pages


def print_pdf(html_dir: Path, out: Path) -> None:
    """Every page of the chapters in one HTML file (their bodies, the manual's stylesheet), printed."""
    bodies = []
    for chapter in PG_CHAPTERS:
        for page in chapter_pages(html_dir, chapter):
            text = (html_dir / page).read_text(encoding="utf-8")
            body = text.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0]
            body = re.sub(
                r'<div class="navheader">.*?</div>|<div class="navfooter">.*?</div>', "", body, flags=re.S
            )
            bodies.append(body)
    page = html_dir / "sealroom-print.html"
    page.write_text(
        '<html><head><meta charset="utf-8"/><title>PostgreSQL 15 Documentation: Data Types, Server Configuration and Client '
        'Authentication</title><link rel="stylesheet" type="text/css" href="stylesheet.css"/></head><body>'
        + "\n".join(bodies)
        + "</body></html>",
        encoding="utf-8",
    )
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tempfile.mkdtemp()}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
    )


def to_docx(text: str, out: Path) -> None:
    """A plain-text licence as a Word document: one paragraph per block, wrapped lines joined."""
    import docx

    document = docx.Document()
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines:
            document.add_paragraph(" ".join(lines))
    document.save(str(out))


def build() -> None:
    if shutil.which("chromium") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    sources = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        roots = {p: unpack(p, v, work) for p, v in PACKAGES.items()}
        pdf_dir, html_dir, versions_dir = (DOCS / c for c in ("manual-pdf", "manual-html", "versions"))
        for d in (pdf_dir, html_dir, versions_dir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        pdf = pdf_dir / "postgresql-15-types-config-authentication.pdf"
        print_pdf(roots["postgresql-doc-15"] / PG_HTML, pdf)
        sources.append(
            _source("manual-pdf", pdf, "postgresql-doc-15", [f"{PG_HTML}/{c}" for c in PG_CHAPTERS])
        )
        for page in PY_PAGES:
            out = html_dir / ("python-3.11-" + page.replace("/", "-"))
            shutil.copyfile(roots["python3.11-doc"] / PY_HTML / page, out)
            sources.append(_source("manual-html", out, "python3.11-doc", [f"{PY_HTML}/{page}"]))
        for name, file_name in LICENCE_FILES.items():
            text = (roots["base-files"] / LICENCES / name).read_text(encoding="utf-8")
            out = versions_dir / file_name
            if file_name.endswith(".docx"):
                to_docx(text, out)
            else:
                out.write_text(text, encoding="utf-8")
            sources.append(_source("versions", out, "base-files", [f"{LICENCES}/{name}"]))
    SOURCES.write_text(json.dumps(sources, indent=1) + "\n", encoding="utf-8")
    print(f"{len(sources)} documents written under {DOCS.relative_to(ROOT)}")


def _source(corpus: str, path: Path, package: str, origin: list[str]) -> dict[str, object]:
    return {
        "corpus": corpus,
        "file": str(path.relative_to(DOCS)),
        "package": package,
        "version": PACKAGES[package],
        "from": origin,
        "licence": LICENCE_OF[package],
        "sha256": sha256(path),
    }


def check() -> int:
    bad = 0
    for source in json.loads(SOURCES.read_text(encoding="utf-8")):
        path = DOCS / source["file"]
        if not path.exists() or sha256(path) != source["sha256"]:
            print(f"{source['file']}: missing or changed (expected sha256 {source['sha256'][:12]}…)")
            bad += 1
    return 1 if bad else 0


def split(files: list[Path]) -> None:
    """Merge the question files and draw each question's split: half of every corpus's answerable and
    half of its unanswerable questions go to "test", by one seeded shuffle per group."""
    import random

    rows = [
        json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    rng = random.Random(SEED)
    for corpus in sorted(CORPUS_OF):
        for unanswerable in (False, True):
            group = [
                r
                for r in rows
                if r["id"].split("-")[0] == corpus and bool(r.get("unanswerable")) == unanswerable
            ]
            rng.shuffle(group)
            for i, row in enumerate(group):
                row["corpus"] = CORPUS_OF[corpus]
                row["split"] = "test" if i < len(group) // 2 else "dev"
    QUESTIONS.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts = {(r["split"], bool(r.get("unanswerable"))): 0 for r in rows}
    for r in rows:
        counts[(r["split"], bool(r.get("unanswerable")))] += 1
    print(
        f"{len(rows)} questions: "
        + ", ".join(
            f"{s} {'unanswerable' if u else 'answerable'} {n}" for (s, u), n in sorted(counts.items())
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["build", "check", "split"])
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    if args.command == "build":
        build()
        return 0
    if args.command == "split":
        split(args.files)
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
