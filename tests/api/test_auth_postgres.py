"""Keys in PostgreSQL, news through Redis: two instances behave as one service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flowserve.access import Access, generate_key
from flowserve.errors import Unavailable
from flowserve.settings import Settings
from flowserve.store.memory_access import MemoryRateLimiter
from flowserve.store.postgres import PostgresFlowStore
from flowserve.store.postgres_keys import PostgresKeyStore
from tests.api.authed import ADMIN, HELLO, AuthedApp, auth_settings, authed_app
from tests.conftest import TEST_REDIS_URL as REDIS_URL


async def runs(app: AuthedApp, key: str) -> int:
    response = await app.client.post(f"/api/v1/run/{HELLO}", json={}, headers={"x-api-key": key})
    return response.status_code


async def test_key_made_on_one_instance_works_and_dies_on_the_other(
    flows_dir: Path, clean_pg: str, redis_prefix: str
) -> None:
    # A cache TTL of an hour: only the Redis announcement can end the key's life early.
    settings = auth_settings(
        flows_dir,
        database_url=clean_pg,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        key_cache_ttl=3600.0,
    )
    async with authed_app(settings) as first, authed_app(settings) as second:
        created = await first.create_key(name="shared", scopes=["execute"])
        key = created["api_key"]
        assert await runs(second, key) == 200  # unknown keys are not cached: no wait
        assert await runs(first, key) == 200
        listed = await second.client.get("/api/v1/api_key/", headers=ADMIN)
        assert [k["name"] for k in listed.json()["api_keys"]] == ["shared"]
        deleted = await first.client.delete(f"/api/v1/api_key/{created['id']}", headers=ADMIN)
        assert deleted.status_code == 200
        assert await runs(first, key) == 401
        for _ in range(500):  # the announcement travels through Redis: allow it a moment
            if await runs(second, key) == 401:
                break
            await asyncio.sleep(0.01)
        refused = await second.client.post(
            f"/api/v1/run/{HELLO}", json={}, headers={"x-api-key": key}
        )
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]


async def test_usage_reaches_the_database(flows_dir: Path, clean_pg: str) -> None:
    settings = auth_settings(flows_dir, database_url=clean_pg)
    async with authed_app(settings) as app:
        created = await app.create_key(name="counted", scopes=["execute"])
        for _ in range(3):
            assert await runs(app, created["api_key"]) == 200
    # A fresh instance reads what the first one wrote when it shut down.
    async with authed_app(settings) as app:
        (listed,) = (await app.client.get("/api/v1/api_key/", headers=ADMIN)).json()["api_keys"]
        assert listed["total_uses"] == 3
        assert listed["last_used_at"] is not None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_verified_keys_keep_working_while_the_database_is_down(clean_pg: str) -> None:
    clock = Clock()
    settings = Settings(auth="on", api_key="fs_" + "b" * 43, key_cache_ttl=5.0)
    store = await PostgresFlowStore.open(clean_pg)
    access = Access(settings, PostgresKeyStore(store.pool), MemoryRateLimiter(), clock=clock)
    record, key = await access.create_key(name="known", scopes=["read"])
    assert (await access.authenticate(key)).key_id == record.id
    await store.close()  # from here every query fails as with a database that is down
    clock.now += 60.0  # long past the cache TTL
    assert (await access.authenticate(key)).key_id == record.id
    with pytest.raises(Unavailable):
        await access.authenticate(generate_key())  # never verified: 503, not 401
    await access.aclose()
