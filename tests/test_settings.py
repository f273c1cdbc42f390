"""Settings come from FLOWSERVE_* variables, typed and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowserve.settings import Settings, SettingsError, read_env_file


def test_strings_from_the_environment_are_converted() -> None:
    settings = Settings.from_mapping(
        {
            "FLOWSERVE_PORT": "8000",
            "FLOWSERVE_LOG_JSON": "false",
            "FLOWSERVE_RUN_TIMEOUT": "2.5",
            "HOME": "/root",
        }
    )
    assert settings.port == 8000
    assert settings.log_json is False
    assert settings.run_timeout == 2.5


def test_unknown_and_out_of_range_settings_are_refused() -> None:
    with pytest.raises(SettingsError, match="FLOWSERVE_PROT"):
        Settings.from_mapping({"FLOWSERVE_PROT": "1"})
    with pytest.raises(SettingsError):
        Settings.from_mapping({"FLOWSERVE_PORT": "70000"})


def test_langflow_api_key_is_an_alias_and_ours_wins() -> None:
    assert Settings.from_mapping({"LANGFLOW_API_KEY": "lf"}).api_key == "lf"
    both = {"LANGFLOW_API_KEY": "lf", "FLOWSERVE_API_KEY": "fs"}
    assert Settings.from_mapping(both).api_key == "fs"


def test_env_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# comment\nexport FLOWSERVE_PORT=9000\nFLOWSERVE_HOST='0.0.0.0'\n")
    assert read_env_file(path) == {"FLOWSERVE_PORT": "9000", "FLOWSERVE_HOST": "0.0.0.0"}
    path.write_text("garbage line\n")
    with pytest.raises(SettingsError, match=":1: expected KEY=VALUE"):
        read_env_file(path)
