"""The IT policy's model allow-list (allowed_model_sha256) holds on every use of a model, not only when
one is added: a policy deployed later also stops the models users recorded before it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sealroom.core.components import make_generator
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import ModelError
from sealroom.models.catalogue import ModelCatalogue, NotAllowed


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A data folder whose catalogue holds the default model and a second model the user added with
    no policy in force; the shipped file's and the other model's sha256."""
    home = tmp_path_factory.mktemp("home")
    catalogue = ModelCatalogue(home)
    shipped = catalogue.default()
    other = home / "elsewhere" / "other.gguf"
    other.parent.mkdir()
    shutil.copy(shipped.path, other)
    with other.open("ab") as f:
        f.write(b"\0" * 32)  # other bytes, the same header
    return home, shipped.sha256, catalogue.add(other).sha256


def with_catalogue_of(home: Path, tmp_path: Path) -> Path:
    """A fresh data folder with a copy of `home`'s catalogue (its entries point to the same files)."""
    (tmp_path / "models").mkdir()
    shutil.copy(home / "models" / "catalogue.json", tmp_path / "models" / "catalogue.json")
    return tmp_path


def test_a_model_recorded_before_the_policy_is_refused_by_sha_and_by_path(
    recorded: tuple[Path, str, str], tmp_path: Path
) -> None:
    home, shipped, other = recorded
    path = next(e.path for e in ModelCatalogue(home).entries() if e.sha256 == other)
    assert ModelCatalogue(home).resolve(other).sha256 == other, "no policy: any model"
    locked = ModelCatalogue(with_catalogue_of(home, tmp_path), [shipped])
    for chosen in (other, path):
        with pytest.raises(NotAllowed, match=r"other\.gguf is not on the list of models your organisation"):
            locked.resolve(chosen)
    assert locked.resolve("").sha256 == shipped
    assert [e.sha256 for e in locked.available()] == [shipped], "the settings offer only allowed models"


def test_the_default_model_is_refused_when_the_policy_names_another(
    recorded: tuple[Path, str, str], tmp_path: Path
) -> None:
    home, _, other = recorded
    locked = ModelCatalogue(with_catalogue_of(home, tmp_path), [other])
    with pytest.raises(ModelError, match="not on the list"):
        locked.resolve("")
    assert [e.sha256 for e in locked.available()] == [other]
    # asking with the default model: the clear refusal, before any model process starts
    with pytest.raises(ModelError, match="the IT policy's allowed_model_sha256"):
        make_generator(tmp_path, Settings(allowed_model_sha256=[other]))


def test_a_fresh_data_folder_does_not_join_a_default_the_policy_refuses(tmp_path: Path) -> None:
    locked = ModelCatalogue(tmp_path, ["0" * 64])
    with pytest.raises(ModelError, match="not on the list"):
        locked.default()
    assert locked.available() == []
    assert not list(tmp_path.rglob("*.gguf")), "250 MB were not joined for nothing"


def test_a_forged_catalogue_entry_does_not_load_another_file(recorded: tuple[Path, str, str], tmp_path: Path):
    """Issue 24: the allowed sha256 with another file's path in catalogue.json made `ask` run a model the
    allow-list does not name. The worker hashes the bytes it loads and refuses these."""
    import json

    home, shipped, other = recorded
    data = with_catalogue_of(home, tmp_path)
    entries = json.loads((data / "models" / "catalogue.json").read_text())
    other_path = next(e["path"] for e in entries if e["sha256"] == other)
    for e in entries:
        if e["sha256"] == shipped:
            e["path"], e["size"] = other_path, Path(other_path).stat().st_size
    (data / "models" / "catalogue.json").write_text(json.dumps(entries))
    (data / "logs").mkdir()
    settings = Settings(allowed_model_sha256=[shipped], compact_default_model=False, chat_model=shipped)
    worker, entry = make_generator(data, settings)
    assert entry.sha256 == shipped and entry.path == other_path  # what the forged entry claims
    try:
        with pytest.raises(ModelError, match="not the model the catalogue and the IT policy allowed"):
            worker.warm_up()
    finally:
        worker.close()


@pytest.mark.slow
def test_the_window_listing_models_while_one_loads_loses_nothing(tmp_path: Path) -> None:
    """The Settings dialog lists models (joining installed packs) while the model loads: both write the
    catalogue. They once shared one temporary file name and failed with FileNotFoundError."""
    import json
    import threading

    errors: list[str] = []

    def run(call: str) -> None:
        try:
            catalogue = ModelCatalogue(tmp_path)
            catalogue.resolve("") if call == "load" else catalogue.available()
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(c,)) for c in ("load", "list", "load", "list")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = json.loads((tmp_path / "models" / "catalogue.json").read_text())
    assert errors == [] and sum(e["default"] for e in entries) == 1
    assert len({e["sha256"] for e in entries}) == len(entries)
