"""The default chat model runs as its compact copy (models/compact.py): made once, byte-identical,
only the token table changed, and the shipped file runs whenever the copy cannot be made."""

import logging
import os
import shutil
from pathlib import Path

import pytest

from sealroom.core import components
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import ModelError
from sealroom.models import compact
from sealroom.models.catalogue import ModelCatalogue
from sealroom.models.gguf import read_gguf


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    ModelCatalogue(home).default()
    return home


def test_the_compact_copy_changes_only_the_token_table_and_is_made_once(home: Path, tmp_path: Path):
    entry = ModelCatalogue(home).default()
    assert entry.sha256 == compact.SOURCE_SHA256  # the copy is pinned to the file the package ships
    shipped = Path(entry.path)
    made = compact.compact_model_in_child(shipped, tmp_path)

    assert made == tmp_path / compact.COMPACT_NAME
    assert compact.sha256_of(made) == compact.COMPACT_SHA256  # the same bytes on every machine
    before, after = read_gguf(shipped).tensor_types, read_gguf(made).tensor_types
    assert {name for name in before if before[name] != after[name]} == {compact.TABLE}
    assert after[compact.TABLE] == compact.GGML_Q5_0
    assert made.stat().st_size < shipped.stat().st_size - 50 * 2**20
    assert [p.name for p in tmp_path.iterdir()] == [compact.COMPACT_NAME]  # no temporary files left

    stamp = made.stat().st_mtime_ns
    assert compact.compact_model_in_child(shipped, tmp_path) == made
    assert made.stat().st_mtime_ns == stamp  # found, not made again

    with made.open("r+b") as f:  # a damaged copy is made again
        f.seek(-1, os.SEEK_END)
        f.write(b"\xff")
    assert compact.sha256_of(compact.compact_model(shipped, tmp_path)) == compact.COMPACT_SHA256


def test_only_the_shipped_file_is_compacted(tmp_path: Path):
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="not the shipped default model"):
        compact.compact_model(other, tmp_path / "cache")
    assert not (tmp_path / "cache" / compact.COMPACT_NAME).exists()


def test_the_default_model_runs_compact_and_the_shipped_file_when_asked_or_when_it_cannot_be_made(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    shipped = ModelCatalogue(home).default()
    cache = tmp_path / "cache"
    monkeypatch.setattr(components, "model_cache", lambda: cache)

    worker, entry = components.make_generator(home, Settings())
    assert Path(entry.path) == cache / compact.COMPACT_NAME and entry.sha256 == compact.COMPACT_SHA256
    assert worker.model_path == cache / compact.COMPACT_NAME

    worker, entry = components.make_generator(home, Settings(compact_default_model=False))
    assert entry.path == shipped.path and entry.sha256 == compact.SOURCE_SHA256

    shutil.rmtree(cache)
    cache.write_text(
        "not a folder"
    )  # the copy cannot be written: the shipped file runs, and the log says why
    with caplog.at_level(logging.WARNING, logger="sealroom"):
        worker, entry = components.make_generator(home, Settings())
    assert entry.path == shipped.path and entry.sha256 == compact.SOURCE_SHA256
    assert any(
        r.getMessage() == "compact default model not made; running the shipped file" for r in caplog.records
    )
