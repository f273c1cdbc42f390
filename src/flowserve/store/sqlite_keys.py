"""``SqliteKeyStore``: API keys in the embedded SQLite file (schema: ``migrations/sqlite/0002``).

It runs its statements on the flow store's connection thread (``SqliteFlowStore.call``),
so keys and flows share one file and one writer.
"""

from __future__ import annotations

import builtins
import sqlite3
from datetime import UTC, datetime
from typing import Any

import msgspec

from flowserve.errors import FlowserveError
from flowserve.store.base import KeyRecord
from flowserve.store.sqlite import SqliteFlowStore

_COLUMNS = (
    "id, name, prefix, key_hash, scopes, flows, expires_at, created_at, last_used_at,"
    " total_uses, revoked_at"
)


def _text(value: datetime | None) -> str | None:
    # One fixed format in UTC, so that comparing the text compares the times.
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _key(row: sqlite3.Row) -> KeyRecord:
    flows = row["flows"]
    created = _time(row["created_at"])
    if created is None:
        raise FlowserveError("An API key row has no created_at")
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        key_hash=row["key_hash"],
        scopes=tuple(msgspec.json.decode(row["scopes"])),
        flows=tuple(msgspec.json.decode(flows)) if flows is not None else None,
        expires_at=_time(row["expires_at"]),
        created_at=created,
        last_used_at=_time(row["last_used_at"]),
        total_uses=row["total_uses"],
        revoked_at=_time(row["revoked_at"]),
    )


class SqliteKeyStore:
    def __init__(self, flows: SqliteFlowStore) -> None:
        self._db = flows

    async def _one(self, sql: str, args: tuple[Any, ...]) -> KeyRecord | None:
        row = await self._db.call(lambda c: c.execute(sql, args).fetchone())
        return _key(row) if row is not None else None

    async def create(self, record: KeyRecord) -> KeyRecord:
        sql = (
            "INSERT INTO api_keys (id, name, prefix, key_hash, scopes, flows, expires_at,"
            f" created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}"
        )
        args = (
            record.id,
            record.name,
            record.prefix,
            record.key_hash,
            msgspec.json.encode(list(record.scopes)).decode(),
            msgspec.json.encode(list(record.flows)).decode() if record.flows is not None else None,
            _text(record.expires_at),
            _text(record.created_at),
        )
        stored = await self._db.transaction(lambda c: c.execute(sql, args).fetchone())
        return _key(stored)

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        return await self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))

    async def list(self) -> builtins.list[KeyRecord]:
        sql = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id"
        rows = await self._db.call(lambda c: c.execute(sql).fetchall())
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord | None:
        sql = (
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?)"
            f" WHERE id = ? RETURNING {_COLUMNS}"
        )
        args = (_text(at), key_id)
        row = await self._db.transaction(lambda c: c.execute(sql, args).fetchone())
        return _key(row) if row is not None else None

    async def touch(self, key_id: str, used_at: datetime, uses: int) -> None:
        sql = (
            "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ''), ?),"
            " total_uses = total_uses + ? WHERE id = ?"
        )
        args = (_text(used_at), uses, key_id)
        await self._db.transaction(lambda c: c.execute(sql, args))

    async def count_usable(self, now: datetime) -> int:
        sql = (
            "SELECT count(*) FROM api_keys"
            " WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
        )
        args = (_text(now),)
        return int(await self._db.call(lambda c: c.execute(sql, args).fetchone()[0]))

    async def ping(self) -> None:
        await self._db.call(lambda c: c.execute("SELECT 1").fetchone())
