"""A seeded hostile document set, and the check that Sealroom indexes it safely (`make test-hostile`).

    python bench/hostile.py generate OUT [--files N] [--seed S]   write the set (and OUT.manifest.json)
    python bench/hostile.py run [--files N] [--seed S] [--json F]  generate, index under a time limit, check
    python bench/hostile.py large                                  a 50 MB HTML and a 20 MB one-line CSV
                                                                   before 5 small files: when are the small
                                                                   ones indexed, and the tree's peak memory

The set is made from the sample corpus (`tests/corpus`): mutations (byte flips, truncations, duplicated,
deleted and zeroed ranges, inserted garbage) and crafted files (zip, flate and XML bombs, deep nesting,
huge declared lengths, odd file names, links out of the folder, loops, FIFOs and sockets), plus control
files whose unique tokens must be found afterwards. Nothing generated is committed: the seed makes it.

`run` passes when: `sealroom index` exits 0 within the time limit, no traceback appears on its output or
in the log, every generated entry ends with a status (never still pending) and every file not indexed
carries a reason, the process tree's peak memory stays within the limit, no canary text from inside a
document reaches the log or a reason, and each control file is the top hit for its token.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
sys.path.insert(0, str(ROOT))

MEMORY_LIMIT = 1.5e9  # bytes, the whole process tree
TIME_LIMIT = 3600  # seconds for the whole index; a hang anywhere shows as a timeout here
CANARY = "CANARYHOSTILE9c4e"
MUTATIONS = ("flip", "truncate", "duplicate", "delete", "zero", "garbage", "swap")


def sources() -> list[Path]:
    files = [
        p for p in sorted(CORPUS.rglob("*")) if p.suffix.lower() in (".pdf", ".docx", ".eml", ".md", ".msg")
    ]
    return [p for p in files if p.stat().st_size < 1_200_000]  # big ones are few; they only slow the run


def text_variants(rng: random.Random) -> dict[str, bytes]:
    """Plain-text formats built from the e-mails' bodies (the corpus has no .txt, .html or .csv)."""
    emails = sorted((CORPUS / "email-samples").rglob("*.eml"))
    body = b"\n".join(p.read_bytes()[-1500:] for p in rng.sample(emails, 6))
    words = body.decode("latin-1").split()[:400]
    html = "<html><body>" + "".join(f"<p>{' '.join(words[i : i + 20])}</p>" for i in range(0, 400, 20))
    csv = "name,amount,note\n" + "".join(
        f"{w},{i},{words[(i * 7) % len(words)]}\n" for i, w in enumerate(words)
    )
    return {".txt": body, ".html": html.encode(), ".csv": csv.encode(), ".md": b"# Notes\n\n" + body}


def mutate(data: bytes, rng: random.Random, kind: str) -> bytes:
    n = len(data)
    if n < 16:
        return data + bytes(rng.randrange(256) for _ in range(16))
    a = rng.randrange(n)
    b = min(n, a + rng.randint(1, max(2, n // 8)))
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 40)):
            out[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == "truncate":
        return data[: rng.randrange(n)]
    if kind == "duplicate":
        return data[:b] + data[a:b] * rng.randint(1, 4) + data[b:]
    if kind == "delete":
        return data[:a] + data[b:]
    if kind == "zero":
        return data[:a] + bytes(b - a) + data[b:]
    if kind == "garbage":
        return data[:a] + rng.randbytes(rng.randint(1, 4096)) + data[a:]
    return data[n // 2 :] + data[: n // 2]  # swap


def docx_with(document_xml: bytes, declared: int | None = None) -> bytes:
    """A minimal .docx whose word/document.xml is `document_xml` (optionally lying about its size)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr("word/document.xml", document_xml)
    raw = buf.getvalue()
    if declared is not None:  # rewrite the uncompressed size in the central directory entry
        at = raw.rfind(b"PK\x01\x02")
        raw = raw[: at + 24] + declared.to_bytes(4, "little") + raw[at + 28 :]
    return raw


W = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'


def pdf_with(content: bytes, *, filters: bytes = b"", length: int | None = None, extra: bytes = b"") -> bytes:
    """A one-page PDF with `content` as its page's content stream."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> " + extra + b">>",
        b"<< /Length %d %s >>\nstream\n" % (len(content) if length is None else length, filters)
        + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def nested_eml(depth: int) -> bytes:
    message = b"From: a@example.org\nSubject: innermost\n\nThe innermost note.\n"
    for level in range(depth):
        boundary = b"b%d" % level
        message = (
            b"From: a@example.org\nSubject: level %d\nMIME-Version: 1.0\n"
            b'Content-Type: multipart/mixed; boundary="%s"\n\n--%s\nContent-Type: text/plain\n\nLevel %d.\n'
            b"--%s\nContent-Type: message/rfc822\n\n%s\n--%s--\n"
            % (level, boundary, boundary, level, boundary, message, boundary)
        )
    return message


def crafted(rng: random.Random) -> dict[str, bytes]:
    """Bombs, nesting, lies about lengths, and canaries in broken files."""
    out: dict[str, bytes] = {}
    para = b"<w:p><w:r><w:t>zip bomb text</w:t></w:r></w:p>"
    for mb in (20, 200):
        out[f"zip-bomb-{mb}mb.docx"] = docx_with(
            W + para * (mb * 1_000_000 // len(para)) + b"</w:body></w:document>"
        )
    out["zip-declared-4gb.docx"] = docx_with(W + para * 10 + b"</w:body></w:document>", declared=0xFFFFFFF0)
    laughs = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    out["xml-bomb.docx"] = docx_with(
        laughs + b"]>" + W + b"<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    out["xml-external-entity.docx"] = docx_with(
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + W
        + b"<w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"
    )
    out["xml-deep.docx"] = docx_with(W + b"<w:p>" * 200_000 + b"</w:p>" * 200_000 + b"</w:body></w:document>")
    for mb in (50, 500):
        bomb = zlib.compress(b"BT /F1 12 Tf 72 712 Td (flate bomb) Tj ET\n" * (mb * 1_000_000 // 42), 9)
        out[f"flate-bomb-{mb}mb.pdf"] = pdf_with(bomb, filters=b"/Filter /FlateDecode")
    text = b"BT /F1 12 Tf 72 712 Td (A page of a PDF with a lying length.) Tj ET"
    out["pdf-length-huge.pdf"] = pdf_with(text, length=999_999_999_999)
    out["pdf-length-negative.pdf"] = pdf_with(text, length=-5)
    out["pdf-count-billion.pdf"] = pdf_with(text).replace(b"/Count 1", b"/Count 1000000000")
    out["pdf-nested-arrays.pdf"] = pdf_with(text, extra=b"/Deep " + b"[" * 100_000 + b"]" * 100_000 + b" ")
    out["pdf-nested-dicts.pdf"] = pdf_with(text, extra=b"/Deep " + b"<< /A " * 20_000 + b">> " * 20_000)
    out["pdf-parent-loop.pdf"] = pdf_with(text).replace(b"/Kids [3 0 R]", b"/Kids [2 0 R 3 0 R]")
    out["pdf-canary-broken.pdf"] = pdf_with(b"BT (" + CANARY.encode() + b") Tj ET")[:300] + b"\x00\xff" * 50
    out["pdf-xref-garbage.pdf"] = pdf_with(text).replace(b"xref", b"xrfe").replace(b"0000000", b"9999999")
    out["eml-nested-30.eml"] = nested_eml(30)
    out["eml-huge-declared.eml"] = (
        b"From: a@example.org\nSubject: big\nContent-Type: multipart/mixed; boundary=x\nContent-Length: 99999999999\n\n"
        b"--x\nContent-Type: text/plain\n\nShort body.\n--x\nContent-Transfer-Encoding: base64\n"
        b"Content-Type: application/octet-stream\n\n" + b"QUFB" * 100_000 + b"\n"
    )
    out["eml-no-boundary.eml"] = b"Content-Type: multipart/mixed\n\n" + rng.randbytes(5000)
    out["html-nested.html"] = b"<div>" * 300_000 + b"deep" + b"</div>" * 300_000
    out["html-huge-attribute.html"] = b'<p title="' + b"x" * 5_000_000 + b'">text after a huge attribute</p>'
    out["csv-one-line.csv"] = b",".join(b"cell%d" % i for i in range(400_000))
    out["csv-quote-never-closed.csv"] = b'a,b\n"' + b"x" * 2_000_000
    out["utf16.txt"] = "Text in UTF-16 with a BOM: Größe, 東京.".encode("utf-16")
    out["utf16-odd-length.txt"] = "Odd".encode("utf-16") + b"\x00"
    out["random-bytes.txt"] = rng.randbytes(50_000)
    out["nul-text.md"] = b"# Title\n\x00\x00\x00 text with NULs"
    out.update(crafted_new_types(rng))
    for suffix in (".pdf", ".docx", ".eml", ".txt", ".md", ".html", ".csv", *NEW_TYPES):
        out[f"empty{suffix}"] = b""
        out[f"garbage{suffix}"] = rng.randbytes(rng.randint(1, 20_000))
    return out


NEW_TYPES = (".xlsx", ".ods", ".pptx", ".odp", ".odt", ".rtf", ".msg", ".png", ".jpg", ".tif")


def zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def crafted_new_types(rng: random.Random) -> dict[str, bytes]:
    """Issue 26's formats at their worst: bombs, endless repeats, huge dimensions, truncated files."""
    import struct

    sys.path.insert(0, str(ROOT / "bench"))
    from scans import many_page_tiff, png_header_only  # the same bombs the unit tests use

    odf = "application/vnd.oasis.opendocument."
    big = b"<a>" + b"x " * 100_000_000 + b"</a>"  # 200 MB of XML, a few hundred KB zipped
    row = b'<table:table-row table:number-rows-repeated="1000000"><table:table-cell office:value-type="string" table:number-columns-repeated="16384"><text:p>x</text:p></table:table-cell></table:table-row>'
    ods = (
        b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        b'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
        b'<office:body><office:spreadsheet><table:table table:name="S">'
        + row
        + b"</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    out = {
        "zip-bomb.xlsx": zip_with(
            {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>", "xl/worksheets/sheet1.xml": big}
        ),
        "zip-bomb.pptx": zip_with({"ppt/presentation.xml": b"<p/>", "ppt/slides/slide1.xml": big}),
        "zip-bomb.odt": zip_with({"mimetype": (odf + "text").encode(), "content.xml": big}),
        "repeated-million-rows.ods": zip_with(
            {"mimetype": (odf + "spreadsheet").encode(), "content.xml": ods}
        ),
        "rtf-deep.rtf": b"{\\rtf1 " + b"{" * 200_000 + b"deep" + b"}" * 200_000 + b"}",
        "rtf-huge-picture.rtf": b"{\\rtf1 text before {\\pict\\pngblip "
        + b"89504e47" * 2_000_000
        + b"} text after}",
        "msg-ole-garbage.msg": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rng.randbytes(30_000),
        "msg-truncated.msg": (CORPUS / "msg-samples" / "strangeDate.msg").read_bytes()[:9000],
        "png-30000x30000.png": png_header_only(30_000, 30_000),
        "tiff-10000-pages.tif": many_page_tiff(10_000),
        "jpeg-truncated.jpg": b"\xff\xd8\xff\xe0" + rng.randbytes(3000),
        "png-huge-width.png": png_header_only(2_000_000, 1),
        "tiff-lying-offsets.tif": b"II*\x00" + struct.pack("<I", 0xFFFFFFF0) + rng.randbytes(200),
    }
    return out


def odd_names(rng: random.Random) -> dict[bytes, bytes]:
    text = b"A file with an odd name is indexed like any other."
    return {
        b"caf\xe9-latin1.txt": text,
        b"\xff\xfe-invalid-utf8.md": text,
        b"new\nline.txt": text,
        b"-leading-dash.txt": text,
        b"--help.txt": text,
        b" leading space.txt": text,
        b"right-to-left-\xe2\x80\xaetxt.exe.txt": text,
        b"x" * 240 + b".txt": text,
        b"\xe2\x80\x8bzero-width.txt": text,
        b"semicolon;rm -rf ~.txt": text,
    }


def generate(out: Path, files: int, seed: int) -> dict[str, object]:
    """Write the set into `out`; returns the manifest (what was made, and the control tokens)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[str] = []

    def put(name: str | bytes, data: bytes) -> None:
        path = os.path.join(os.fsencode(out), name if isinstance(name, bytes) else name.encode())
        with open(path, "wb") as f:
            f.write(data)
        entries.append(os.fsdecode(path))

    controls = {}
    for i in range(10):
        token = f"ctl{seed}x{i}q{rng.randrange(10**6):06d}"
        controls[token] = str(out / f"control-{i:02d}.txt")
        put(f"control-{i:02d}.txt", f"Control file {i}. The audit reference {token} is kept here.\n".encode())
    for name, data in crafted(rng).items():
        put(name, data)
    for name, data in odd_names(rng).items():
        put(name, data)
    links = {
        "link-shadow.txt": "/etc/shadow",
        "link-passwd.txt": "/etc/passwd",
        "link-environ.txt": "/proc/self/environ",
        "link-up.txt": "../../../../etc/hostname",
        "link-loop.txt": "link-loop.txt",
        "link-dangling.txt": "does-not-exist.txt",
        "link-inside.txt": "control-00.txt",
    }
    for name, target in links.items():
        os.symlink(target, out / name)
        entries.append(str(out / name))
    (out / "link-to-etc").symlink_to("/etc")
    entries.append(str(out / "link-to-etc"))  # a link to a folder: listed with its reason, never followed
    os.mkfifo(out / "fifo.txt")
    entries.append(str(out / "fifo.txt"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(out / "socket.txt"))
    sock.close()
    entries.append(str(out / "socket.txt"))
    pool = sources()
    texts = text_variants(rng)
    kinds: Counter[str] = Counter()
    i = 0
    while len(entries) < files:
        if rng.random() < 0.2:
            suffix = rng.choice(sorted(texts))
            data, stem = texts[suffix], "text"
        else:
            source = rng.choice(pool)
            suffix, data, stem = source.suffix.lower(), source.read_bytes(), source.stem[:30]
        kind = rng.choice(MUTATIONS)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):  # sometimes several mutations on top of each other
            data = mutate(data, rng, kind)
        kinds[kind] += 1
        sub = out / f"m{i // 200:02d}"  # a few sub-folders, as real trees have
        sub.mkdir(exist_ok=True)
        put(f"m{i // 200:02d}/{i:04d}-{kind}-{stem}{suffix}", data)
        i += 1
    manifest = {"seed": seed, "entries": entries, "controls": controls, "mutations": dict(kinds)}
    return manifest


def run(files: int, seed: int, report: Path | None) -> int:
    from sealroom.core.engine import Engine
    from sealroom.core.runtime.proctree import PeakSampler

    work = Path(tempfile.mkdtemp(prefix="sealroom-hostile-"))
    folder, home = work / "hostile", work / "home"
    manifest = generate(folder, files, seed)
    entries: list[str] = manifest["entries"]  # type: ignore[assignment]
    controls: dict[str, str] = manifest["controls"]  # type: ignore[assignment]
    env = dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(work / "no-policy.toml"))
    cli = [sys.executable, "-m", "sealroom.core.cli"]
    subprocess.run([*cli, "add", str(folder)], env=env, check=True, capture_output=True)
    print(f"indexing {len(entries)} hostile entries in {folder} (limit {TIME_LIMIT} s)", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        [*cli, "index"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with PeakSampler(proc.pid, 0.1) as rss:
        try:
            stdout, stderr = proc.communicate(timeout=TIME_LIMIT)
            hung = False
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            hung = True
    seconds = time.monotonic() - started
    problems: list[str] = []
    if hung:
        problems.append(f"sealroom index did not finish within {TIME_LIMIT} s")
    elif proc.returncode != 0:
        problems.append(f"sealroom index exited {proc.returncode}: {stderr[-500:]}")
    log = (home / "logs" / "sealroom.jsonl").read_text(errors="replace")
    (work / "index.stdout").write_text(stdout, errors="replace")
    (work / "index.stderr").write_text(stderr, errors="replace")
    for name, text in (("output", stdout + stderr), ("log", log)):
        if "Traceback" in text:
            tail = text[text.index("Traceback") :].strip().splitlines()[-1][:300]
            problems.append(f"a traceback in the {name}: {tail}")
        if CANARY in text:
            problems.append(f"document text (the canary) in the {name}")
    if rss.peak > MEMORY_LIMIT:
        problems.append(f"peak memory {rss.peak / 1e9:.2f} GB over {MEMORY_LIMIT / 1e9:.1f} GB")
    with Engine(home=home, purpose="hostile check") as engine:
        rows = {row.path: row for row in engine.catalog.files()}
        statuses = Counter(row.status for row in rows.values())
        reasons: Counter[str] = Counter()
        for path in entries:
            row = rows.get(path)
            if row is None:
                problems.append(f"no status for {path!r}")
            elif row.status == "pending":
                problems.append(f"still pending: {path!r}")
            elif row.status != "indexed":
                if not row.reason:
                    problems.append(f"no reason for {path!r} ({row.status})")
                reasons[(row.reason or "").split(" (")[0][:60]] += 1
            if row is not None and CANARY in (row.reason or ""):
                problems.append(f"document text in the reason of {path!r}")
        found = 0
        for token, path in controls.items():
            hits = engine.search(token, k=3)
            if hits and hits[0].path == path:
                found += 1
            else:
                problems.append(f"control {Path(path).name} is not the top hit for {token}")
        chunk_ids = {c.id for batch in engine.catalog.all_chunks() for c in batch}
        if engine.parts.store.ids() != chunk_ids:
            problems.append("the vector index does not match the catalog")
    result = {
        "entries": len(entries),
        "seed": seed,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(rss.peak / 1e6),
        "statuses": dict(statuses),
        "reasons": dict(reasons.most_common()),
        "mutations": manifest["mutations"],
        "controls_found": f"{found}/{len(controls)}",
        "problems": problems,
        "machine": f"{os.cpu_count()} cores",
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if not problems:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    else:
        print(f"kept for inspection: {work}", file=sys.stderr)
    return 1 if problems else 0


def large(seed: int) -> int:
    """The issue's large-file case: small files must not wait for big ones; memory stays bounded."""
    from sealroom.core.engine import Engine
    from sealroom.core.runtime.proctree import PeakSampler

    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="sealroom-large-"))
    folder = work / "docs"
    folder.mkdir()
    words = (CORPUS / "README.md").read_text().split()
    with (folder / "big.html").open("w") as f:
        f.write("<html><body><table>")
        row = 0
        while f.tell() < 50_000_000:
            cells = " ".join(rng.choice(words) for _ in range(12))
            f.write(f"<tr><td>{cells} row {row}</td><td>{rng.random()}</td></tr>\n")
            row += 1
        f.write("</table></body></html>")
    with (folder / "big.csv").open("w") as f:
        while f.tell() < 20_000_000:  # one line
            f.write(",".join(rng.choice(words) for _ in range(10)) + f",{rng.random()},")
    for i in range(5):
        (folder / f"small{i}.txt").write_text(f"Small control file {i}: the zebracode{i} token lives here.\n")
    started = time.monotonic()
    first_seen: dict[str, float] = {}
    with PeakSampler() as rss, Engine(home=work / "home", purpose="large-file check") as engine:
        engine.add_folder(str(folder))
        engine.emit = lambda e: first_seen.setdefault(
            Path(e.get("path", "")).name, time.monotonic() - started
        )
        summary = engine.index()
    small = max(v for k, v in first_seen.items() if k.startswith("small"))
    result = {
        "small_files_indexed_after_s": round(small, 1),
        "whole_run_s": round(summary.seconds, 1),
        "peak_rss_mb": round(rss.peak / 1e6),
        "chunks": summary.chunks,
    }
    print(json.dumps(result, indent=2))
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0 if rss.peak <= MEMORY_LIMIT else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("generate", "run", "large"))
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--files", type=int, default=1100)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--json", type=Path, default=None, help="where `run` writes its figures")
    args = parser.parse_args()
    if args.command == "generate":
        if args.out is None:
            parser.error("generate needs OUT")
        manifest = generate(args.out, args.files, args.seed)
        Path(f"{args.out}.manifest.json").write_text(json.dumps(manifest, indent=1))
        print(f"{len(manifest['entries'])} entries in {args.out}")  # type: ignore[arg-type]
        return 0
    if args.command == "large":
        return large(args.seed)
    return run(args.files, args.seed, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
