from pathlib import Path

import pytest

from sealroom.core.config import load_settings, save_user_settings
from sealroom.core.errors import SealroomError


def test_policy_wins_over_user_settings_and_is_locked(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home.mkdir()
    (home / "settings.toml").write_text("schema_version = 1\nmax_file_mb = 50\nn_ctx = 3072\n")
    policy = tmp_path / "policy.toml"
    policy.write_text("max_file_mb = 10\n")
    monkeypatch.setenv("SEALROOM_POLICY", str(policy))
    settings = load_settings()
    assert (settings.max_file_mb, settings.n_ctx) == (10, 3072)
    assert settings.locked == {"max_file_mb"}


def test_unknown_setting_is_a_clear_error(home: Path):
    home.mkdir()
    (home / "settings.toml").write_text("max_flie_mb = 5\n")
    with pytest.raises(SealroomError, match="unknown setting 'max_flie_mb'"):
        load_settings()


def test_saved_settings_round_trip_and_policy_keys_are_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home.mkdir()
    policy = tmp_path / "policy.toml"
    policy.write_text('log_level = "WARNING"\n')
    monkeypatch.setenv("SEALROOM_POLICY", str(policy))
    saved = save_user_settings({"n_ctx": 3072, "chat_model": '/models/a "b".gguf'})
    assert (saved.n_ctx, saved.chat_model) == (3072, '/models/a "b".gguf')
    assert load_settings().n_ctx == 3072
    with pytest.raises(SealroomError, match="set by your IT policy"):
        save_user_settings({"log_level": "DEBUG"})
    with pytest.raises(SealroomError, match="needs a int"):
        save_user_settings({"n_ctx": "big"})
    assert load_settings().log_level == "WARNING"


def test_the_example_policy_is_valid_and_locks_every_key_it_sets(tmp_path, monkeypatch):
    from sealroom.core.config import load_settings
    from tests.conftest import ROOT

    monkeypatch.setenv("SEALROOM_HOME", str(tmp_path))
    monkeypatch.setenv("SEALROOM_POLICY", str(ROOT / "packaging" / "policy.example.toml"))
    settings = load_settings()
    assert {"export_enabled", "export_formats", "audit_question_text", "allowed_hosts"} <= settings.locked
    assert settings.export_formats == ["md", "docx", "json"] and settings.audit_retention_days == 0
