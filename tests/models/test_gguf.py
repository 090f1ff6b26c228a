import shutil
from pathlib import Path

import pytest

from sealroom.core.runtime.errors import ModelError
from sealroom.models.catalogue import ModelCatalogue
from sealroom.models.gguf import read_gguf


@pytest.fixture(scope="module")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(ModelCatalogue(tmp_path_factory.mktemp("models")).default().path)


def test_default_model_header(default_model: Path):
    info = read_gguf(default_model)
    assert info.architecture == "gemma3"
    assert info.context_length and info.context_length >= 8192
    assert info.chat_template is None  # the base model: prompted by completion, not a chat template


def test_truncated_model_is_refused_with_a_clear_message(default_model: Path, tmp_path: Path):
    cut = tmp_path / "cut.gguf"
    with default_model.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(default_model.stat().st_size // 2))
    with pytest.raises(ModelError, match="truncated"):
        read_gguf(cut)


def test_non_gguf_and_missing_files(tmp_path: Path):
    other = tmp_path / "notes.gguf"
    other.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF"):
        read_gguf(other)
    with pytest.raises(ModelError, match="not found"):
        read_gguf(tmp_path / "missing.gguf")


def test_catalogue_records_sha256_and_allowed_list(default_model: Path, tmp_path: Path):
    copy = tmp_path / "copy.gguf"
    shutil.copy(default_model, copy)
    entry = ModelCatalogue(tmp_path / "a").add(copy)
    assert len(entry.sha256) == 64 and entry.size == copy.stat().st_size
    with pytest.raises(ModelError, match="not on the list"):
        ModelCatalogue(tmp_path / "b", allowed_sha256=["0" * 64]).add(copy)
