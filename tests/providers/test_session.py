"""The provider pool reads the proxy variables once, when it is made, as httpx reads them."""

from __future__ import annotations

import pytest

from flowserve.providers import new_session

PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize("name", [*PROXY_VARIABLES, *(n.upper() for n in PROXY_VARIABLES)])
async def test_a_configured_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _clear(monkeypatch)
    monkeypatch.setenv(name, "http://proxy.example:3128")
    async with new_session() as pool:
        assert dict(pool.proxies)[name.lower().removesuffix("_proxy")] == (
            "http://proxy.example:3128"
        )


async def test_without_a_proxy_none_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    async with new_session() as pool:
        assert pool.proxies == ()
