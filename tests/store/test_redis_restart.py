"""The Redis session store across a restart of its own redis-server (never the shared one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowserve.engine.types import Message
from flowserve.errors import Unavailable
from flowserve.store.redis import RedisMessageStore, connect
from tests.faults import RedisInstance


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisInstance]:
    redis = await asyncio.to_thread(RedisInstance(tmp_path).start)
    yield redis
    await asyncio.to_thread(redis.stop)


async def test_sessions_work_again_after_redis_restarts(own_redis: RedisInstance) -> None:
    client = connect(own_redis.url)
    store = RedisMessageStore(client, "t:")
    flow = str(uuid.uuid4())
    try:
        await store.append(flow, "s", [Message(text="before")], 60)
        await asyncio.to_thread(own_redis.stop)
        with pytest.raises(Unavailable, match="Redis is unavailable"):
            await store.append(flow, "s", [Message(text="lost")], 60)
        await asyncio.to_thread(own_redis.start)
        # The restarted server knows neither the pooled connections nor the loaded
        # append script: the store reconnects and loads it again, with no error.
        await store.append(flow, "s", [Message(text="after")], 60)
        history = await store.history(flow, "s", limit=10, ttl=60)
    finally:
        await store.close()
        await client.aclose()
    assert [m.text for m in history] == ["before", "after"]
