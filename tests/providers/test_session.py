"""The provider session: proxy settings read only when configured; its bounded pool."""

from __future__ import annotations

import asyncio

import pytest

from flowserve.errors import PoolExhausted
from flowserve.providers import new_session
from flowserve.providers.transport import ConnectionSlots, slots_of

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


# ---- ConnectionSlots: the bound on provider exchanges in flight ---------------------------


async def test_a_free_slot_is_taken_without_waiting() -> None:
    slots = ConnectionSlots(2, timeout=1.0)
    assert slots.try_take()
    assert slots.try_take()
    assert not slots.try_take()
    assert slots.in_use == 2


async def test_a_waiter_gets_the_released_slot_in_arrival_order() -> None:
    slots = ConnectionSlots(1, timeout=5.0)
    assert slots.try_take()
    served: list[str] = []

    async def call(name: str) -> None:
        await slots.wait()
        served.append(name)

    first = asyncio.create_task(call("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(call("second"))
    await asyncio.sleep(0)
    assert not slots.try_take()  # someone waits: no slot is free, no queue jumping
    slots.release()
    await first
    slots.release()
    await second
    assert served == ["first", "second"]
    slots.release()
    assert slots.in_use == 0


async def test_a_wait_past_the_timeout_is_a_pool_exhausted_503_naming_the_setting() -> None:
    slots = ConnectionSlots(1, timeout=0.05)
    assert slots.try_take()
    with pytest.raises(PoolExhausted) as caught:
        await slots.wait()
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": "1"}
    assert "PROVIDER_POOL_SIZE=1" in caught.value.detail
    assert "FLOWSERVE_PROVIDER_POOL_SIZE" in caught.value.detail
    slots.release()  # the timed-out waiter is skipped: the slot is free again
    assert slots.in_use == 0
    assert slots.try_take()


async def test_a_cancelled_waiter_handed_a_slot_passes_it_on() -> None:
    slots = ConnectionSlots(1, timeout=5.0)
    assert slots.try_take()
    waiter = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    slots.release()  # handed to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.in_use == 0


async def test_sessions_made_here_carry_their_pool_size() -> None:
    async with new_session(pool_size=7, pool_timeout=0.5) as session:
        slots = slots_of(session)
        assert (slots.limit, slots.timeout) == (7, 0.5)
        # aiohttp's own limit (100 by default) would queue calls past it without end.
        assert session.connector is not None
        assert session.connector.limit == 0
        assert session.connector.limit_per_host == 0
