"""Settings: defaults < $KIZUNA_HOME/config.toml < KIZUNA_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from kizuna.config import Settings, save_client
from kizuna.kernel.errors import InvalidRequest


def test_defaults_put_everything_in_the_home_folder(tmp_path: Path) -> None:
    settings = Settings.load({"KIZUNA_HOME": str(tmp_path)})
    assert settings.database == f"sqlite:///{tmp_path / 'kizuna.db'}"
    assert settings.service_url == "http://127.0.0.1:8600"


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('port = 9000\nhost = "127.0.0.2"\n')
    settings = Settings.load({"KIZUNA_HOME": str(tmp_path), "KIZUNA_PORT": "9100"})
    assert (settings.host, settings.port) == ("127.0.0.2", 9100)


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("colour = 1\n", {}, "unknown setting 'colour'"),
        ("port = [1]\n", {}, "'port'"),
        ("", {"KIZUNA_PORT": "eighty"}, "not a int"),
        ("port = \n", {}, "config.toml"),
    ],
)
def test_a_bad_setting_is_named(tmp_path: Path, text: str, env: dict[str, str], words: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(InvalidRequest, match=words):
        Settings.load({"KIZUNA_HOME": str(tmp_path), **env})


def test_the_client_settings_are_saved_private_and_read_back(tmp_path: Path) -> None:
    settings = Settings.load({"KIZUNA_HOME": str(tmp_path)})
    path = save_client(settings, "http://127.0.0.1:8601", 'kz_"quoted"')
    assert path.stat().st_mode & 0o777 == 0o600
    again = Settings.load({"KIZUNA_HOME": str(tmp_path)})
    assert (again.url, again.token) == ("http://127.0.0.1:8601", 'kz_"quoted"')
