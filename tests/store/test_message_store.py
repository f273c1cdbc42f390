"""The MessageStore contract, on every backend: Redis and the in-process store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from flowserve.engine.types import Message
from flowserve.store.base import MessageStore
from flowserve.store.memory import MemoryMessageStore
from flowserve.store.redis import RedisMessageStore, connect
from tests.conftest import TEST_REDIS_URL

TTL = 60


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis_client = connect(TEST_REDIS_URL)
    yield redis_client
    await redis_client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_prefix: str, client: aioredis.Redis
) -> AsyncIterator[MessageStore]:
    opened: MessageStore
    if request.param == "memory":
        opened = MemoryMessageStore()
    else:
        opened = RedisMessageStore(client, redis_prefix)
    yield opened
    await opened.close()


def say(text: str, sender: str = "User") -> Message:
    return Message(text=text, sender=sender, sender_name="User" if sender == "User" else "AI")


def flow_id() -> str:
    return str(uuid.uuid4())


async def test_appended_messages_come_back_in_order_with_ids(store: MessageStore) -> None:
    flow = flow_id()
    await store.append(flow, "s", [say("one"), say("two", "Machine")], TTL)
    await store.append(flow, "s", [say("three")], TTL)
    history = await store.history(flow, "s", limit=10, ttl=TTL)
    assert [m.text for m in history] == ["one", "two", "three"]
    assert all(m.id and m.timestamp for m in history)
    assert {m.flow_id for m in history} == {flow}
    assert {m.session_id for m in history} == {"s"}


async def test_history_limits_filters_and_orders(store: MessageStore) -> None:
    flow = flow_id()
    await store.append(flow, "s", [say("u1"), say("a1", "Machine"), say("u2")], TTL)
    last_two = await store.history(flow, "s", limit=2, ttl=TTL)
    assert [m.text for m in last_two] == ["a1", "u2"]
    users = await store.history(flow, "s", limit=10, sender="User", ttl=TTL)
    assert [m.text for m in users] == ["u1", "u2"]
    newest_first = await store.history(flow, "s", limit=10, order="DESC", ttl=TTL)
    assert [m.text for m in newest_first] == ["u2", "a1", "u1"]


async def test_sessions_are_separate_per_flow_and_session(store: MessageStore) -> None:
    one, two = flow_id(), flow_id()
    await store.append(one, "s", [say("one-s")], TTL)
    await store.append(one, "t", [say("one-t")], TTL)
    await store.append(two, "s", [say("two-s")], TTL)
    assert [m.text for m in await store.history(one, "s", limit=9, ttl=TTL)] == ["one-s"]
    every = await store.history(one, None, limit=9, ttl=TTL)
    assert sorted(m.text for m in every) == ["one-s", "one-t"]


async def test_monitor_query_filters_by_flow_session_and_sender(store: MessageStore) -> None:
    one, two = flow_id(), flow_id()
    await store.append(one, "s", [say("q"), say("a", "Machine")], TTL)
    await store.append(two, "s", [say("other")], TTL)
    in_session = await store.messages(session_id="s")
    assert [m.text for m in in_session] == ["q", "a", "other"]
    machine = await store.messages(flow_id=one, sender="Machine")
    assert [m.text for m in machine] == ["a"]
    newest_first = await store.messages(flow_id=one, session_id="s", order="DESC")
    assert [m.text for m in newest_first] == ["a", "q"]
    assert await store.messages(session_id="nobody") == []


async def test_deleting_a_session_in_one_flow_or_all(store: MessageStore) -> None:
    one, two = flow_id(), flow_id()
    await store.append(one, "s", [say("1"), say("2")], TTL)
    await store.append(two, "s", [say("3")], TTL)
    await store.append(one, "keep", [say("4")], TTL)
    assert await store.delete_session(one, "s") == 2
    assert [m.text for m in await store.messages(session_id="s")] == ["3"]
    assert await store.delete_session(None, "s") == 1
    assert await store.messages(session_id="s") == []
    assert await store.delete_session(None, "s") == 0
    assert [m.text for m in await store.messages(flow_id=one)] == ["4"]


async def test_deleting_a_flow_deletes_every_session_of_it_and_nothing_else(
    store: MessageStore,
) -> None:
    gone, kept = flow_id(), flow_id()
    await store.append(gone, "s", [say("1"), say("2")], TTL)
    await store.append(gone, "t", [say("3")], TTL)
    await store.append(kept, "s", [say("4")], TTL)
    assert await store.delete_flow(gone) == 3
    assert await store.messages(flow_id=gone) == []
    assert await store.sessions(gone) == []
    assert [m.text for m in await store.messages(session_id="s")] == ["4"]
    assert await store.sessions() == ["s"]
    assert await store.delete_flow(gone) == 0


async def test_an_unused_session_expires(store: MessageStore) -> None:
    flow = flow_id()
    await store.append(flow, "short", [say("gone soon")], 1)
    await store.append(flow, "long", [say("stays")], TTL)
    await asyncio.sleep(1.2)
    assert await store.history(flow, "short", limit=9, ttl=1) == []
    assert [m.text for m in await store.messages(flow_id=flow)] == ["stays"]


async def test_store_answers_ping(store: MessageStore) -> None:
    await store.ping()


async def test_live_sessions_are_listed_per_flow_or_overall(store: MessageStore) -> None:
    one, two = flow_id(), flow_id()
    await store.append(one, "b", [say("x")], TTL)
    await store.append(one, "a", [say("y")], TTL)
    await store.append(two, "c", [say("z")], TTL)
    assert await store.sessions(one) == ["a", "b"]
    assert {"a", "b", "c"} <= set(await store.sessions())
    await store.delete_session(one, "a")
    assert await store.sessions(one) == ["b"]
