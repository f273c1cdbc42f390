"""Settings for running behind a proxy are checked when the process starts."""

from __future__ import annotations

import pytest

from flowserve.settings import Settings, SettingsError


@pytest.mark.parametrize("value", ["flowserve", "/flowserve/", "//", "/a b"])
def test_root_path_must_be_a_slash_prefix(value: str) -> None:
    with pytest.raises(SettingsError, match="FLOWSERVE_ROOT_PATH"):
        Settings.from_mapping({"FLOWSERVE_ROOT_PATH": value})


@pytest.mark.parametrize("value", ["flows.example.com", "ftp://example.com", "https://"])
def test_public_url_must_be_absolute_http(value: str) -> None:
    with pytest.raises(SettingsError, match="FLOWSERVE_PUBLIC_URL"):
        Settings.from_mapping({"FLOWSERVE_PUBLIC_URL": value})


def test_proxy_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_mapping(
        {
            "FLOWSERVE_ROOT_PATH": "/tools/flowserve",
            "FLOWSERVE_PUBLIC_URL": "https://example.com/tools/flowserve",
            "FLOWSERVE_FORWARDED_ALLOW_IPS": "10.0.0.0/8,127.0.0.1",
            "FLOWSERVE_CORS_ORIGINS": "https://a.example, https://b.example,",
            "FLOWSERVE_STREAM_HEARTBEAT": "0",
            "FLOWSERVE_SHUTDOWN_TIMEOUT": "12.5",
        }
    )
    assert settings.root_path == "/tools/flowserve"
    assert settings.cors_origin_list == ["https://a.example", "https://b.example"]
    assert settings.stream_heartbeat == 0
    assert settings.shutdown_timeout == 12.5


def test_negative_limits_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="FLOWSERVE_SHUTDOWN_TIMEOUT"):
        Settings.from_mapping({"FLOWSERVE_SHUTDOWN_TIMEOUT": "-1"})
