"""Redis sessions: TTLs checked with PTTL on the real keys, and sliding on every access."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from flowserve.engine.types import Message
from flowserve.store.redis import RedisMessageStore, connect
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis_client = connect(TEST_REDIS_URL)
    yield redis_client
    await redis_client.aclose()


@pytest.fixture
async def store(client: aioredis.Redis, redis_prefix: str) -> AsyncIterator[RedisMessageStore]:
    opened = RedisMessageStore(client, redis_prefix)
    yield opened
    await opened.close()


async def test_append_sets_the_session_ttl_on_every_key(
    client: aioredis.Redis, redis_prefix: str, store: RedisMessageStore
) -> None:
    flow = str(uuid.uuid4())
    await store.append(flow, "s1", [Message(text="hi")], 1800)
    for key in (
        f"{redis_prefix}messages:{flow}:s1",
        f"{redis_prefix}session:s1",
        f"{redis_prefix}flow-sessions:{flow}",
    ):
        pttl = await client.pttl(key)
        assert 1_790_000 < pttl <= 1_800_000, key


async def test_every_access_slides_the_ttl(
    client: aioredis.Redis, redis_prefix: str, store: RedisMessageStore
) -> None:
    flow = str(uuid.uuid4())
    key = f"{redis_prefix}messages:{flow}:s1"
    await store.append(flow, "s1", [Message(text="hi")], 120)
    # Pretend most of the TTL has passed, then use the session in each way.
    for use in (
        lambda: store.history(flow, "s1", limit=5, ttl=120),
        lambda: store.messages(session_id="s1"),
        lambda: store.messages(flow_id=flow),
        lambda: store.append(flow, "s1", [Message(text="again")], 120),
    ):
        await client.pexpire(key, 5_000)
        await use()
        assert await client.pttl(key) > 110_000


async def test_a_flow_specific_ttl_is_kept_by_monitor_reads(
    client: aioredis.Redis, redis_prefix: str, store: RedisMessageStore
) -> None:
    flow = str(uuid.uuid4())
    key = f"{redis_prefix}messages:{flow}:s1"
    await store.append(flow, "s1", [Message(text="hi")], 30)
    await client.pexpire(key, 1_000)
    await store.messages(session_id="s1")
    assert 20_000 < await client.pttl(key) <= 30_000


async def test_appends_survive_a_flushed_script_cache(
    client: aioredis.Redis, redis_prefix: str, store: RedisMessageStore
) -> None:
    """A restarted Redis has no scripts: the append reloads its own and writes once."""
    flow = str(uuid.uuid4())
    await store.append(flow, "s1", [Message(text="before")], 60)
    await client.script_flush()
    await store.append(flow, "s1", [Message(text="after")], 60)
    texts = [m.text for m in await store.history(flow, "s1", limit=10, ttl=60)]
    assert texts == ["before", "after"]
