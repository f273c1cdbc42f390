"""The provider session reads proxy settings only when a proxy is configured."""

from __future__ import annotations

import pytest

from flowserve.providers import new_session

PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")


@pytest.mark.parametrize("name", [*PROXY_VARIABLES, *(n.upper() for n in PROXY_VARIABLES)])
async def test_a_configured_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for other in PROXY_VARIABLES:
        monkeypatch.delenv(other, raising=False)
        monkeypatch.delenv(other.upper(), raising=False)
    monkeypatch.setenv(name, "http://proxy.example:3128")
    async with new_session() as session:
        assert session.trust_env


async def test_without_a_proxy_no_environment_is_read_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    async with new_session() as session:
        # trust_env costs two worker-thread hops per request (netrc, proxy lookup).
        assert not session.trust_env
