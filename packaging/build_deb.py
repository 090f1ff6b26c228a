"""Build dist/sealroom_<version>_amd64.deb from the PyInstaller folder (dist/sealroom/).

    python packaging/build_deb.py [--bundle dist/sealroom] [--out dist]

`Depends:` is computed: every shared library the bundle's ELF files load from the system
(ldd) is mapped to its Debian package (dpkg -S), plus fonts. Only the libraries the
bundle does not carry itself are listed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALWAYS = ["fonts-dejavu-core"]  # Qt finds no font without one
IGNORE_LIBS = {"linux-vdso.so.1"}



#: OCR runs Debian's Tesseract (core/ingest/ocr.py): the program and its English, German and French data
OCR_PACKAGES = ["tesseract-ocr", "tesseract-ocr-eng", "tesseract-ocr-deu", "tesseract-ocr-fra"]

def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def elf_files(bundle: Path) -> list[Path]:
    out = []
    for p in bundle.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(p)
    return out


def system_libraries(bundle: Path) -> tuple[set[str], set[str]]:
    """(paths of system libraries the bundle loads, sonames not found at all)."""
    inside = {p.name for p in bundle.rglob("*")}
    used, missing = set(), set()
    for elf in elf_files(bundle):
        proc = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env={"LANG": "C"})
        for line in proc.stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
            if not m:
                continue
            soname, path = m.groups()
            if soname in IGNORE_LIBS or soname in inside:
                continue
            if path == "not":
                missing.add(soname)
            elif not path.startswith(str(bundle)):
                used.add(os.path.realpath(path))
    return used, missing


def packages_of(paths: set[str]) -> list[str]:
    pkgs: set[str] = set()
    for path in sorted(paths):
        candidates = [path, path.replace("/usr/lib/", "/lib/", 1), path.replace("/lib/", "/usr/lib/", 1)]
        for c in candidates:
            proc = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if proc.returncode == 0:
                pkgs.add(proc.stdout.split(":", 1)[0].strip())
                break
    return sorted(pkgs | set(ALWAYS))


DESKTOP = """[Desktop Entry]
Type=Application
Name=Sealroom
GenericName=Private document assistant
Comment=Ask your documents; answers cite file and page. Nothing leaves this computer.
Exec=sealroom-desktop
Icon=sealroom
Terminal=false
Categories=Office;Utility;
Keywords=documents;search;questions;pdf;
"""

ICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
<rect x="6" y="4" width="40" height="52" rx="4" fill="#f4f4f0" stroke="#2f4858" stroke-width="3"/>
<path d="M14 18h24M14 26h24M14 34h16" stroke="#2f4858" stroke-width="3" stroke-linecap="round"/>
<circle cx="44" cy="44" r="12" fill="#2f6f8f"/>
<rect x="39" y="42" width="10" height="8" rx="1.5" fill="#fff"/>
<path d="M41 42v-3a3 3 0 0 1 6 0v3" stroke="#fff" stroke-width="2" fill="none"/>
</svg>
"""


def man_page(bundle: Path) -> bytes:
    """sealroom(1) from the command's own --help (one section per command)."""
    exe = bundle / "sealroom"
    env = dict(os.environ, SEALROOM_HOME=tempfile.mkdtemp(), COLUMNS="100")

    def helptext(*args: str) -> str:
        return subprocess.run([str(exe), *args, "--help"], capture_output=True, text=True, env=env).stdout

    top = helptext()
    commands = re.findall(r"^    (\w+)\s", top, re.M)
    esc = lambda s: s.replace("\\", "\\\\").replace("-", "\\-")  # noqa: E731
    out = [
        f'.TH SEALROOM 1 "" "Sealroom {version()}" "User Commands"',
        ".SH NAME",
        "sealroom, sealroom-desktop \\- private document assistant: local index, cited answers",
        ".SH SYNOPSIS",
        "\\fBsealroom\\fR COMMAND [OPTIONS]",
        ".br",
        "\\fBsealroom\\-desktop\\fR",
        ".SH DESCRIPTION",
        "Sealroom watches folders of documents, keeps a local index of them and answers questions with "
        "quotes that cite file and page, using a local model. Nothing leaves the computer unless you "
        "export to a destination your IT policy allows.",
        ".SH USAGE",
        ".nf",
        esc(top),
        ".fi",
    ]
    for c in dict.fromkeys(commands):
        out += [f".SS {c}", ".nf", esc(helptext(c)), ".fi"]
    out += [
        ".SH FILES",
        ".TP",
        "/etc/sealroom/policy.toml",
        "IT policy: keys set there win over the user's settings (see the commented file).",
        ".TP",
        "~/.local/share/Sealroom",
        "a user's index, chats, audit trail and outbox (kept on remove and purge).",
        ".SH ENVIRONMENT",
        "SEALROOM_HOME (data directory), SEALROOM_POLICY (policy file).",
    ]
    return gzip.compress(("\n".join(out) + "\n").encode(), mtime=0)


def commented_policy() -> str:
    """The example policy with every key commented out: IT uncomments what it decides."""
    lines = []
    for line in (ROOT / "packaging" / "policy.example.toml").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line and not line.startswith("schema_version"):
            line = "# " + line
        lines.append(line)
    return "\n".join(lines) + "\n"


def build(bundle: Path, out: Path) -> Path:
    ver = version()
    stage = Path(tempfile.mkdtemp(prefix="sealroom-deb-")) / "root"
    opt = stage / "opt" / "sealroom"
    shutil.copytree(bundle, opt, symlinks=True)
    for rel, text in {
        "usr/bin/sealroom": '#!/bin/sh\nexec /opt/sealroom/sealroom "$@"\n',
        "usr/bin/sealroom-desktop": '#!/bin/sh\nexec /opt/sealroom/sealroom --desktop "$@"\n',
    }.items():
        path = stage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    (stage / "usr/share/applications").mkdir(parents=True)
    (stage / "usr/share/applications/sealroom.desktop").write_text(DESKTOP)
    icon = stage / "usr/share/icons/hicolor/scalable/apps/sealroom.svg"
    icon.parent.mkdir(parents=True)
    icon.write_text(ICON)
    man = stage / "usr/share/man/man1"
    man.mkdir(parents=True)
    (man / "sealroom.1.gz").write_bytes(man_page(bundle))
    os.symlink("sealroom.1.gz", man / "sealroom-desktop.1.gz")
    doc = stage / "usr/share/doc/sealroom"
    doc.mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "README.md", doc / "README.md")
    shutil.copytree(ROOT / "models" / "licences", doc / "licences")
    (stage / "etc/sealroom").mkdir(parents=True)
    (stage / "etc/sealroom/policy.toml").write_text(commented_policy())
    used, missing = system_libraries(opt)
    if missing:
        print(
            f"warning: libraries found neither in the bundle nor on this system: {sorted(missing)}",
            file=sys.stderr,
        )
    depends = packages_of(used) + OCR_PACKAGES
    size_kb = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file() and not p.is_symlink()) // 1024
    debian = stage / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(
        f"""Package: sealroom
Version: {ver}
Section: utils
Priority: optional
Architecture: amd64
Maintainer: Sealroom team <support@sealroom.invalid>
Installed-Size: {size_kb}
Depends: {", ".join(depends)}
Description: private document assistant: local index, cited answers
 Sealroom watches folders of documents, keeps a local index of them and answers
 questions in plain language with quotes citing file and page, using a local
 model bundled in the package. Nothing leaves the machine unless exported to a
 destination the IT policy (/etc/sealroom/policy.toml) allows.
"""
    )
    (debian / "conffiles").write_text("/etc/sealroom/policy.toml\n")
    (debian / "postrm").write_text(
        "#!/bin/sh\nset -e\n# purge removes /etc/sealroom (the policy); users' data directories are never touched.\n"
        'if [ "$1" = purge ]; then rm -rf /etc/sealroom; fi\n'
    )
    (debian / "postrm").chmod(0o755)
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"sealroom_{ver}_amd64.deb"
    subprocess.run(
        [
            "dpkg-deb",
            "--root-owner-group",
            "-Zzstd",
            "-z9",
            "--threads-max=2",
            "--build",
            str(stage),
            str(deb),
        ],
        check=True,
    )
    shutil.rmtree(stage.parent)
    print(f"{deb} ({deb.stat().st_size / 1e6:.0f} MB); Depends: {', '.join(depends)}")
    return deb


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bundle", default=str(ROOT / "dist" / "sealroom"))
    p.add_argument("--out", default=str(ROOT / "dist"))
    args = p.parse_args()
    build(Path(args.bundle), Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
