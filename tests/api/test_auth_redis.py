"""Access control shared between instances through the real Redis: one rate-limit count
for all of them, and a revocation that reaches every instance's key cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from flowserve.access import Access
from flowserve.errors import InvalidApiKey
from flowserve.settings import Settings
from flowserve.store.memory_access import MemoryKeyStore, MemoryRateLimiter
from flowserve.store.redis_access import RedisKeyEvents, RedisRateLimiter
from tests.api.authed import HELLO, auth_settings, authed_app
from tests.conftest import TEST_REDIS_URL as REDIS_URL


async def test_rate_limit_is_shared_by_every_instance(flows_dir: Path, redis_prefix: str) -> None:
    settings = auth_settings(
        flows_dir, redis_url=REDIS_URL, redis_prefix=redis_prefix, rate_limit_per_key=3
    )
    async with authed_app(settings) as first, authed_app(settings) as second:
        # The bootstrap key is the same key on both instances.
        headers = {"x-api-key": settings.api_key}
        answers = []
        for app in (first, second, first):
            response = await app.client.post(f"/api/v1/run/{HELLO}", json={}, headers=headers)
            answers.append(response.status_code)
        assert answers == [200, 200, 200]
        limited = await second.client.post(f"/api/v1/run/{HELLO}", json={}, headers=headers)
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_redis_window_starts_once_and_reports_its_remaining_time(
    redis_prefix: str,
) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        limiter = RedisRateLimiter(client, redis_prefix, MemoryRateLimiter())
        assert await limiter.hit("ip:1.2.3.4", 2, 30.0) == 0
        assert await limiter.hit("ip:1.2.3.4", 2, 30.0) == 0
        wait = await limiter.hit("ip:1.2.3.4", 2, 30.0)
        assert 0 < wait <= 30.0
        assert await limiter.hit("ip:5.6.7.8", 2, 30.0) == 0
        ttl_ms = await client.pttl(f"{redis_prefix}rate:ip:1.2.3.4")
        assert 0 < ttl_ms <= 30_000
    finally:
        await client.aclose()


async def accepts(access: Access, key: str) -> bool:
    try:
        await access.authenticate(key)
    except InvalidApiKey:
        return False
    return True


async def test_limits_fall_back_to_this_instance_while_redis_is_down() -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        limiter = RedisRateLimiter(client, "unused:", MemoryRateLimiter())
        assert await limiter.hit("key:k", 1, 30.0) == 0
        assert await limiter.hit("key:k", 1, 30.0) > 0
    finally:
        await client.aclose()


async def test_revocation_reaches_another_instances_cache(redis_prefix: str) -> None:
    # Two instances over one key store; the long cache TTL means only the
    # announcement can make the second one forget the key.
    settings = Settings(auth="on", api_key="fs_" + "b" * 43, key_cache_ttl=3600.0)
    keys = MemoryKeyStore()
    client = aioredis.Redis.from_url(REDIS_URL)
    here = Access(settings, keys, MemoryRateLimiter(), RedisKeyEvents(client, redis_prefix))
    there_events = RedisKeyEvents(client, redis_prefix)
    there = Access(settings, keys, MemoryRateLimiter(), there_events)
    try:
        await here.start()
        await there.start()
        await there_events.wait_subscribed()
        record, key = await here.create_key(name="shared", scopes=["read"])
        assert (await there.authenticate(key)).key_id == record.id  # now cached there
        await here.revoke_key(record.id)
        with pytest.raises(InvalidApiKey, match="revoked"):
            await here.authenticate(key)
        for _ in range(500):  # the announcement travels through Redis: allow it a moment
            if not await accepts(there, key):
                break
            await asyncio.sleep(0.01)
        with pytest.raises(InvalidApiKey, match="revoked"):
            await there.authenticate(key)
    finally:
        await here.aclose()
        await there.aclose()
        await client.aclose()


async def test_without_announcements_a_cached_key_lives_until_its_ttl(
    redis_prefix: str,
) -> None:
    # The counterpart of the test above: what the announcement saves us from.
    settings = Settings(auth="on", api_key="fs_" + "b" * 43, key_cache_ttl=3600.0)
    keys = MemoryKeyStore()
    here = Access(settings, keys, MemoryRateLimiter())
    there = Access(settings, keys, MemoryRateLimiter())
    record, key = await here.create_key(name="shared", scopes=["read"])
    await there.authenticate(key)
    await here.revoke_key(record.id)
    assert (await there.authenticate(key)).key_id == record.id
    there.forget_all()
    with pytest.raises(InvalidApiKey):
        await there.authenticate(key)
    await here.aclose()
    await there.aclose()
