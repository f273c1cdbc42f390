"""The KeyStore contract, run against every backend: in-process, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowserve.access import generate_key, hash_key
from flowserve.store.base import KeyRecord, KeyStore
from flowserve.store.memory_access import MemoryKeyStore
from flowserve.store.postgres import PostgresFlowStore
from flowserve.store.postgres_keys import PostgresKeyStore
from flowserve.store.sqlite import SqliteFlowStore
from flowserve.store.sqlite_keys import SqliteKeyStore


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backend's name, and for PostgreSQL a clean database's DSN."""
    dsn = request.getfixturevalue("clean_pg") if request.param == "postgres" else ""
    return request.param, dsn


@pytest.fixture
async def keys(backend: tuple[str, str], tmp_path: Path) -> AsyncIterator[KeyStore]:
    name, dsn = backend
    if name == "memory":
        yield MemoryKeyStore()
    elif name == "sqlite":
        flows = await SqliteFlowStore.open(str(tmp_path / "keys.db"))
        try:
            yield SqliteKeyStore(flows)
        finally:
            await flows.close()
    else:
        pg = await PostgresFlowStore.open(dsn)
        try:
            yield PostgresKeyStore(pg.pool)
        finally:
            await pg.close()


def new_record(**fields: object) -> KeyRecord:
    key = generate_key()
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "name": "test",
        "prefix": key[:8],
        "key_hash": hash_key(key),
        "scopes": ("read", "execute"),
        "created_at": datetime.now(UTC).replace(microsecond=0),
    }
    values.update(fields)
    return KeyRecord(**values)  # type: ignore[arg-type]


async def test_created_key_is_found_by_hash_and_id(keys: KeyStore) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    record = new_record(flows=("a-flow", "b-flow"), expires_at=expires)
    stored = await keys.create(record)
    assert stored == record
    assert await keys.by_hash(record.key_hash) == record
    assert await keys.get(record.id) == record
    assert await keys.by_hash(hash_key("fs_unknown")) is None
    assert await keys.get(str(uuid.uuid4())) is None
    assert await keys.get("not-a-uuid") is None


async def test_list_returns_every_key_oldest_first(keys: KeyStore) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    newer = await keys.create(new_record(name="newer", created_at=now))
    older = await keys.create(new_record(name="older", created_at=now - timedelta(hours=1)))
    assert [k.name for k in await keys.list()] == [older.name, newer.name]


async def test_revoke_marks_once_and_keeps_the_key_listed(keys: KeyStore) -> None:
    record = await keys.create(new_record())
    first = datetime.now(UTC).replace(microsecond=0)
    revoked = await keys.revoke(record.id, first)
    assert revoked is not None
    assert revoked.revoked_at == first
    again = await keys.revoke(record.id, first + timedelta(minutes=5))
    assert again is not None
    assert again.revoked_at == first
    assert await keys.revoke(str(uuid.uuid4()), first) is None
    assert [k.id for k in await keys.list()] == [record.id]


async def test_touch_adds_uses_and_keeps_the_latest_time(keys: KeyStore) -> None:
    record = await keys.create(new_record())
    later = datetime.now(UTC).replace(microsecond=0)
    await keys.touch(record.id, later, 3)
    await keys.touch(record.id, later - timedelta(minutes=1), 2)
    touched = await keys.get(record.id)
    assert touched is not None
    assert touched.total_uses == 5
    assert touched.last_used_at == later


async def test_count_usable_skips_revoked_and_expired_keys(keys: KeyStore) -> None:
    now = datetime.now(UTC)
    await keys.create(new_record())
    await keys.create(new_record(expires_at=now + timedelta(days=1)))
    await keys.create(new_record(expires_at=now - timedelta(seconds=1)))
    revoked = await keys.create(new_record())
    await keys.revoke(revoked.id, now)
    assert await keys.count_usable(now) == 2


async def test_every_scope_survives_the_round_trip(keys: KeyStore) -> None:
    record = await keys.create(new_record(scopes=("read", "execute", "write", "admin")))
    found = await keys.by_hash(record.key_hash)
    assert found is not None
    assert found.scopes == ("read", "execute", "write", "admin")
    assert found.flows is None
