from pathlib import Path

import pytest

from sealroom.core.runtime.config import load_settings, save_user_settings
from sealroom.core.runtime.errors import SealroomError


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
    from sealroom.core.runtime.config import load_settings
    from tests.conftest import ROOT

    monkeypatch.setenv("SEALROOM_HOME", str(tmp_path))
    monkeypatch.setenv("SEALROOM_POLICY", str(ROOT / "packaging" / "policy.example.toml"))
    settings = load_settings()
    assert {"export_enabled", "export_formats", "audit_question_text", "allowed_hosts"} <= settings.locked
    assert settings.export_formats == ["md", "docx", "json"] and settings.audit_retention_days == 0


def _system_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    import sealroom.core.runtime.config as config

    path = tmp_path / "etc-sealroom-policy.toml"
    path.write_text(text)
    monkeypatch.setattr(config, "SYSTEM_POLICY", path)
    return path


def test_the_system_policy_holds_whatever_sealroom_policy_says(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _system_policy(
        tmp_path, monkeypatch, 'export_formats = ["md"]\nexport_enabled = true\naudit_enabled = true\n'
    )
    monkeypatch.setenv("SEALROOM_POLICY", "/nonexistent")  # issue 24: this lifted the whole policy
    settings = load_settings()
    assert settings.export_formats == ["md"] and {"export_formats", "audit_enabled"} <= settings.locked
    further = tmp_path / "further.toml"  # a further policy may tighten, never loosen
    further.write_text('export_formats = ["md", "docx"]\nexport_enabled = false\naudit_enabled = false\n')
    monkeypatch.setenv("SEALROOM_POLICY", str(further))
    settings = load_settings()
    assert (settings.export_formats, settings.export_enabled, settings.audit_enabled) == (["md"], False, True)


def test_the_users_settings_only_make_policy_keys_stricter(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _system_policy(
        tmp_path,
        monkeypatch,
        'audit_enabled = true\naudit_question_text = true\nexport_formats = ["md", "json"]\n'
        'allowed_model_sha256 = ["aa", "bb"]\nmax_file_mb = 10\n',
    )
    home.mkdir()
    (home / "settings.toml").write_text(
        'audit_enabled = false\naudit_question_text = false\nexport_formats = ["json", "docx"]\n'
        'allowed_model_sha256 = ["cc"]\nmax_file_mb = 500\n'
    )
    s = load_settings()
    assert (s.audit_enabled, s.audit_question_text, s.export_formats) == (True, False, ["json"])
    assert (s.allowed_model_sha256, s.max_file_mb) == (["aa", "bb"], 10)


def test_settings_handed_to_the_engine_are_held_to_the_policy(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import dataclasses

    from sealroom.core.runtime.config import under_policy

    _system_policy(tmp_path, monkeypatch, "audit_enabled = true\nexport_enabled = false\n")
    loose = dataclasses.replace(load_settings(), audit_enabled=False, export_enabled=True, locked=frozenset())
    held = under_policy(loose)
    assert (held.audit_enabled, held.export_enabled) == (True, False)
    assert {"audit_enabled", "export_enabled"} <= held.locked


def test_an_unreadable_system_policy_stops_sealroom_rather_than_lifting_it(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _system_policy(tmp_path, monkeypatch, "export_enabled = [not toml\n")
    with pytest.raises(SealroomError, match="cannot read settings file"):
        load_settings()
