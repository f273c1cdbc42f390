"""The provider pool reads the proxy variables once, when it is made, as httpx reads them."""

from __future__ import annotations

import asyncio

import pytest

from flowserve.errors import PoolExhausted
from flowserve.providers import new_session
from flowserve.providers.http1 import Pool, PoolFull
from flowserve.providers.transport import Transport

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


# ---- the bound on provider exchanges in flight ---------------------------------------------


async def test_a_free_slot_is_taken_without_waiting() -> None:
    async with Pool(size=2, wait=1.0) as pool:
        await asyncio.wait_for(pool.take_slot(), 0.1)
        await asyncio.wait_for(pool.take_slot(), 0.1)
        assert pool.in_use == 2


async def test_a_waiter_gets_the_released_slot_in_arrival_order() -> None:
    async with Pool(size=1, wait=5.0) as pool:
        await pool.take_slot()
        served: list[str] = []

        async def call(name: str) -> None:
            await pool.take_slot()
            served.append(name)

        first = asyncio.create_task(call("first"))
        await asyncio.sleep(0)
        second = asyncio.create_task(call("second"))
        await asyncio.sleep(0)
        assert served == []  # no slot is free: both wait
        pool.free_slot()
        await first
        pool.free_slot()
        await second
        assert served == ["first", "second"]
        pool.free_slot()
        assert pool.in_use == 0


async def test_a_wait_past_the_timeout_is_pool_full_then_the_slot_is_free_again() -> None:
    async with Pool(size=1, wait=0.05) as pool:
        await pool.take_slot()
        with pytest.raises(PoolFull):
            await pool.take_slot()
        pool.free_slot()  # the timed-out waiter is skipped: the slot is free again
        assert pool.in_use == 0
        await asyncio.wait_for(pool.take_slot(), 0.1)


async def test_a_full_pool_is_a_pool_exhausted_503_naming_the_setting() -> None:
    async with Pool(size=1, wait=0.05) as pool:
        await pool.take_slot()
        transport = Transport(pool, "OpenAI", max_retries=0)
        with pytest.raises(PoolExhausted) as caught:
            await transport.post_json("http://127.0.0.1:9/v1/chat", {}, {})
        pool.free_slot()
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": "1"}
    assert "PROVIDER_POOL_SIZE=1" in caught.value.detail
    assert "FLOWSERVE_PROVIDER_POOL_SIZE" in caught.value.detail


async def test_a_cancelled_waiter_handed_a_slot_passes_it_on() -> None:
    async with Pool(size=1, wait=5.0) as pool:
        await pool.take_slot()
        waiter = asyncio.create_task(pool.take_slot())
        await asyncio.sleep(0)
        pool.free_slot()  # handed to the waiter ...
        waiter.cancel()  # ... which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.in_use == 0


async def test_sessions_made_here_carry_their_pool_size() -> None:
    async with new_session(7, 0.5) as pool:
        assert (pool.size, pool.wait) == (7, 0.5)
