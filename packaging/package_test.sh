#!/usr/bin/env bash
# make package-test: install the .deb into a clean Debian root (debootstrap, minbase: no Python) and use it
# there with no network: --version, add the sample corpus, index, search, ask with a citation, the window under
# Xvfb with a screenshot; then upgrade from the previous build, remove, purge. As root. Figures go to
# bench/results/package.json, the screenshot to artefacts/package-desktop.png.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
DEB=${DEB:-$(ls -t dist/sealroom_*_amd64.deb | head -1)}
PREV=${PREV_DEB:-$(ls -t dist/previous/sealroom_*_amd64.deb 2>/dev/null | head -1 || true)}
SUITE=bookworm
MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)
CACHE=/var/cache/sealroom-package-test
BASE=$CACHE/$SUITE-minbase.tar
WORK=$(mktemp -d /tmp/sealroom-pkgtest-XXXXXX)
R=$WORK/root
RESULTS=$ROOT_DIR/bench/results/package.json
mkdir -p "$CACHE" "$ROOT_DIR/artefacts" "$ROOT_DIR/bench/results"

cleanup() {
  for m in "$R/tmp/.X11-unix" "$R/dev/pts" "$R/dev" "$R/proc" "$R/sys"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  [ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "print(round($2 - $1, 1))"; }

for tool in debootstrap Xvfb xwininfo; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap xvfb x11-utils >/dev/null; }
done

if [ ! -f "$BASE" ]; then
  echo "debootstrap $SUITE (minbase) from $MIRROR, cached in $BASE"
  debootstrap --variant=minbase "$SUITE" "$WORK/base" "$MIRROR" >/dev/null
  tar -C "$WORK/base" -cf "$BASE" .
  rm -rf "$WORK/base"
fi
# a scanned page for OCR: the second page of a corpus PDF rendered at 200 dpi, speckled and skewed
.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import pypdfium2; from scans import degrade, render; \
degrade(render(pypdfium2.PdfDocument('tests/corpus/pdf-samples/006-pdflatex-outline/pdflatex-outline.pdf'), 1, 200), 7).save('$WORK/scan.png')"

mkdir -p "$R"
tar -C "$R" -xf "$BASE"
cp /etc/resolv.conf "$R/etc/resolv.conf"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
in_root() { chroot "$R" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
offline() { unshare -n chroot "$R" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

if in_root sh -c 'command -v python3 || command -v python' >/dev/null; then echo "the clean root has a Python"; exit 1; fi

# IT pre-seeds the policy before installing; the package must keep it
mkdir -p "$R/etc/sealroom"
printf 'schema_version = 1\nlog_level = "INFO"\naudit_question_text = false\n' > "$R/etc/sealroom/policy.toml"
SEED=$(sha256sum "$R/etc/sealroom/policy.toml" | cut -d' ' -f1)

# the previous build (make package keeps it in dist/previous/); without one, this build repacked as <version>~prev
if [ -f "$PREV" ] && [ "$(dpkg-deb -f "$PREV" Version)" != "$(dpkg-deb -f "$DEB" Version)" ]; then
  upgrade="from the previous build $(dpkg-deb -f "$PREV" Version)"
  cp "$PREV" "$R/tmp/previous.deb"
else
  dpkg-deb -R "$DEB" "$WORK/prev"
  sed -i "s/^Version: .*/Version: $(dpkg-deb -f "$DEB" Version)~prev/" "$WORK/prev/DEBIAN/control"
  dpkg-deb --root-owner-group -Zzstd -z1 -b "$WORK/prev" "$R/tmp/previous.deb" >/dev/null
  rm -rf "$WORK/prev"
  upgrade="from this build repacked as $(dpkg-deb -f "$DEB" Version)~prev (no earlier build in dist/previous)"
fi
cp "$DEB" "$R/tmp/sealroom.deb"
in_root apt-get update -qq
t0=$(now)
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold /tmp/previous.deb >/dev/null
install_s=$(secs "$t0" "$(now)")
[ "$(sha256sum "$R/etc/sealroom/policy.toml" | cut -d' ' -f1)" = "$SEED" ] || { echo "the pre-seeded policy was replaced"; exit 1; }
in_root sh -c 'command -v python3' >/dev/null && { echo "installing the package pulled a Python"; exit 1; }
[ -f "$R/usr/share/applications/sealroom.desktop" ] && [ -f "$R/usr/share/man/man1/sealroom.1.gz" ]
[ -f "$R/usr/share/icons/hicolor/scalable/apps/sealroom.svg" ]
# network clients the app never imports are left out of the bundle (packaging/sealroom.spec)
for left_out in grpc aiohttp uvloop hf_xet; do
  [ ! -e "$R/opt/sealroom/_internal/$left_out" ] || { echo "$left_out is in the bundle"; exit 1; }
done

# index with the previous build, then upgrade: the index keeps working without re-indexing
mkdir -p "$R/root/docs"
cp -r tests/corpus/pdf-samples/017-unreadable-meta-data "$R/root/docs/"  # read by pypdf (PDFium refuses it)
cp -r tests/corpus/pdf-samples/006-pdflatex-outline "$R/root/docs/"  # read by PDFium
cp tests/corpus/docx-samples/*.docx "$R/root/docs/" 2>/dev/null || true
offline sealroom add /root/docs
t0=$(now)
offline sealroom index
index_s=$(secs "$t0" "$(now)")
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold /tmp/sealroom.deb >/dev/null
[ "$(sha256sum "$R/etc/sealroom/policy.toml" | cut -d' ' -f1)" = "$SEED" ] || { echo "the upgrade replaced the policy"; exit 1; }
again=$(offline sealroom index)
echo "after the upgrade: $again"
echo "$again" | grep -q " 0 pages, 0 chunks" || { echo "the upgrade made Sealroom re-index"; exit 1; }

# a scanned page (an image, no text layer): read by the Tesseract the package depends on, with no network
cp "$WORK/scan.png" "$R/root/docs/scanned-letter.png"
offline sealroom index >/dev/null
offline sealroom status | grep -q "^indexed  /root/docs/scanned-letter.png" || { echo "the scanned page was not indexed"; offline sealroom status; exit 1; }
offline sealroom search "Huardest gefburn" --json | grep -q 'OCR text, confidence' || { echo "OCR read nothing"; exit 1; }
echo "a scanned page was read by OCR in the clean root"

version=$(offline sealroom --version)
echo "$version"
offline sealroom search "wirewound potentiometer" --json | grep -q unreadablemetadata.pdf
offline sealroom search "Huardest gefburn" --json | grep -q pdflatex-outline.pdf || { echo "the bundle's PDFium read nothing"; exit 1; }
t0=$(now)
answer=$(offline sealroom ask "What is the power rating of the potentiometer?" --json)
ask_s=$(secs "$t0" "$(now)")
echo "$answer" | grep -q '"page": 1' || { echo "no cited page in: $answer"; exit 1; }
echo "$answer" | grep -q '"called_model": true'
# the feedback loop from the bundle: rate the answer, run the rated answers, the report with its charts
answer_id=$(echo "$answer" | sed -n 's/.*"answer_id": \([0-9]*\).*/\1/p' | head -1)
offline sealroom feedback "$answer_id" --good >/dev/null
offline sealroom eval --feedback | grep -q "^1 of 1 rated answers" || { echo "eval --feedback failed"; exit 1; }
offline sealroom report --html /root/health.html >/dev/null
grep -q "data:image/png;base64" "$R/root/health.html" || { echo "the report has no charts"; exit 1; }
offline sealroom report --prometheus | grep -q "^sealroom_files{status=\"indexed\"}" || { echo "no Prometheus text"; exit 1; }
grep -q '"name":"generate"' "$R/root/.local/share/Sealroom/traces.jsonl" || { echo "the ask was not traced"; exit 1; }

# the window under Xvfb (the X socket is shared into the root; no network namespace needed for it)
# -displayfd: Xvfb picks a free display and writes its number once it accepts clients (a fixed
# `sleep 1` lost that race once on a busy machine, and the window then failed with "could not connect")
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 & XVFB_PID=$!
for _ in $(seq 1 300); do [ -s "$WORK/display" ] && break; sleep 0.1; done
[ -s "$WORK/display" ] || { cat "$WORK/xvfb.log"; echo "Xvfb did not start"; exit 1; }
X=":$(tr -d '[:space:]' < "$WORK/display")"
mkdir -p "$R/tmp/.X11-unix" && mount --bind /tmp/.X11-unix "$R/tmp/.X11-unix"
t0=$(now)
unshare -n chroot "$R" env -i HOME=/root PATH=/usr/bin:/bin LANG=C.UTF-8 DISPLAY=$X sealroom-desktop > "$WORK/desktop.log" 2>&1 &
DESK=$!
window_s=""
for _ in $(seq 1 600); do
  if DISPLAY=$X xwininfo -root -tree 2>/dev/null | grep -q '"Sealroom"'; then window_s=$(secs "$t0" "$(now)"); break; fi
  sleep 0.1
done
[ -n "$window_s" ] || { cat "$WORK/desktop.log"; echo "no window"; exit 1; }
sleep 4
DISPLAY=$X "$ROOT_DIR/.venv/bin/python" -c "
from PySide6.QtGui import QGuiApplication
app = QGuiApplication([])
assert app.primaryScreen().grabWindow(0).save('$ROOT_DIR/artefacts/package-desktop.png', 'PNG')"
kill "$DESK" 2>/dev/null; wait "$DESK" 2>/dev/null || true

in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq sealroom >/dev/null
[ ! -e "$R/opt/sealroom/sealroom" ] && [ -f "$R/etc/sealroom/policy.toml" ] && [ -d "$R/root/.local/share/Sealroom" ]
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq sealroom >/dev/null
[ ! -e "$R/etc/sealroom" ] && [ -f "$R/root/.local/share/Sealroom/catalog.sqlite" ]

deb_mb=$(python3 -c "import os; print(round(os.path.getsize('$DEB') / 1e6))")
installed_mb=$(dpkg-deb -f "$DEB" Installed-Size | python3 -c "import sys; print(round(int(sys.stdin.read()) / 1024))")
depends=$(dpkg-deb -f "$DEB" Depends)
cat > "$RESULTS" <<JSON
{
  "package": "$(basename "$DEB")",
  "version": "$version",
  "deb_mb": $deb_mb,
  "installed_mb": $installed_mb,
  "install_s": $install_s,
  "index_s": $index_s,
  "first_answer_s": $ask_s,
  "window_shown_s": $window_s,
  "upgrade": "$upgrade",
  "depends": "$depends",
  "root": "debootstrap --variant=minbase $SUITE",
  "machine": "$(nproc) cores"
}
JSON
cat "$RESULTS"
echo "package-test: OK"
