from pathlib import Path

import pytest

from sealroom.core.config import load_settings
from sealroom.core.errors import SealroomError


def test_policy_wins_over_user_settings_and_is_locked(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home.mkdir()
    (home / "settings.toml").write_text("schema_version = 1\nmax_file_mb = 50\nn_ctx = 2048\n")
    policy = tmp_path / "policy.toml"
    policy.write_text("max_file_mb = 10\n")
    monkeypatch.setenv("SEALROOM_POLICY", str(policy))
    settings = load_settings()
    assert (settings.max_file_mb, settings.n_ctx) == (10, 2048)
    assert settings.locked == {"max_file_mb"}


def test_unknown_setting_is_a_clear_error(home: Path):
    home.mkdir()
    (home / "settings.toml").write_text("max_flie_mb = 5\n")
    with pytest.raises(SealroomError, match="unknown setting 'max_flie_mb'"):
        load_settings()
