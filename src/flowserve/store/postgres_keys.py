"""``PostgresKeyStore``: API keys in the flow database (schema: ``migrations/postgres/0002``)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import asyncpg

from flowserve.errors import FlowserveError
from flowserve.store.base import KeyRecord, canonical_uuid
from flowserve.store.postgres import Pool, fetch

_COLUMNS = (
    "id::text AS id, name, prefix, key_hash, scopes, flows, expires_at, created_at,"
    " last_used_at, total_uses, revoked_at"
)


def _key(row: asyncpg.Record) -> KeyRecord:
    flows = row["flows"]
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        key_hash=row["key_hash"],
        scopes=tuple(row["scopes"]),
        flows=tuple(flows) if flows is not None else None,
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        total_uses=row["total_uses"],
        revoked_at=row["revoked_at"],
    )


class PostgresKeyStore:
    """Shares the flow store's pool; asyncpg errors leave as ``Unavailable``/``Conflict``."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def _fetch(self, sql: str, *args: Any) -> builtins.list[asyncpg.Record]:
        return await fetch(self._pool, sql, *args)

    async def _one(self, sql: str, *args: Any) -> KeyRecord | None:
        rows = await self._fetch(sql, *args)
        return _key(rows[0]) if rows else None

    async def create(self, record: KeyRecord) -> KeyRecord:
        stored = await self._one(
            f"INSERT INTO api_keys (id, name, prefix, key_hash, scopes, flows, expires_at,"
            f" created_at) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
            record.id,
            record.name,
            record.prefix,
            record.key_hash,
            list(record.scopes),
            list(record.flows) if record.flows is not None else None,
            record.expires_at,
            record.created_at,
        )
        if stored is None:
            raise FlowserveError("The database returned no row")
        return stored

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        return await self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash)

    async def get(self, key_id: str) -> KeyRecord | None:
        canonical = canonical_uuid(key_id)
        if canonical is None:
            return None
        return await self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1::uuid", canonical)

    async def list(self) -> builtins.list[KeyRecord]:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord | None:
        canonical = canonical_uuid(key_id)
        if canonical is None:
            return None
        return await self._one(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2)"
            f" WHERE id = $1::uuid RETURNING {_COLUMNS}",
            canonical,
            at,
        )

    async def touch(self, key_id: str, used_at: datetime, uses: int) -> None:
        await self._fetch(
            "UPDATE api_keys SET last_used_at = greatest(last_used_at, $2),"
            " total_uses = total_uses + $3 WHERE id = $1::uuid",
            key_id,
            used_at,
            uses,
        )

    async def count_usable(self, now: datetime) -> int:
        rows = await self._fetch(
            "SELECT count(*) AS n FROM api_keys"
            " WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
            now,
        )
        return int(rows[0]["n"])

    async def ping(self) -> None:
        await self._fetch("SELECT 1")
