"""``PostgresFileStore``: uploaded files in the flow database (``migrations/postgres/0003``).

The bytes are split into ``CHUNK``-sized ``bytea`` rows: an upload is written chunk
by chunk inside one transaction (a reader sees all of it or nothing), and a
download reads one chunk per query, so neither holds a whole file in memory.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import asyncpg
import msgspec

from flowserve.errors import Conflict, FileNotFound, FlowserveError
from flowserve.store.base import FileRecord, canonical_uuid
from flowserve.store.postgres import _CONNECTION_ERRORS, Pool, fetch, translate

CHUNK = 1024 * 1024

_COLUMNS = (
    "id::text AS id, owner, name, path, size, content_type, flow_id::text AS flow_id, created_at"
)


def _file(row: asyncpg.Record) -> FileRecord:
    return FileRecord(
        id=row["id"],
        owner=row["owner"],
        name=row["name"],
        path=row["path"],
        size=row["size"],
        content_type=row["content_type"],
        flow_id=row["flow_id"],
        created_at=row["created_at"],
    )


def _translated(exc: BaseException) -> FlowserveError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict("Another file was stored at this path at the same moment; try again")
    return translate(exc)


async def rechunk(content: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """``content`` in pieces of exactly ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    async for piece in content:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


class PostgresFileStore:
    """Shares the flow store's pool; asyncpg errors leave as ``Unavailable``/``Conflict``."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def _fetch(self, sql: str, *args: Any) -> builtins.list[asyncpg.Record]:
        return await fetch(self._pool, sql, *args, errors=_translated)

    async def _one(self, sql: str, *args: Any) -> FileRecord | None:
        rows = await self._fetch(sql, *args)
        return _file(rows[0]) if rows else None

    async def put(self, record: FileRecord, content: AsyncIterable[bytes]) -> FileRecord:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM files WHERE path = $1", record.path)
                await conn.execute(
                    "INSERT INTO files (id, owner, name, path, content_type, flow_id, created_at)"
                    " VALUES ($1::uuid, $2, $3, $4, $5, $6::uuid, $7)",
                    record.id,
                    record.owner,
                    record.name,
                    record.path,
                    record.content_type,
                    record.flow_id,
                    record.created_at,
                )
                size = 0
                seq = 0
                async for chunk in rechunk(content, CHUNK):
                    await conn.execute(
                        "INSERT INTO file_chunks (file_id, seq, data) VALUES ($1::uuid, $2, $3)",
                        record.id,
                        seq,
                        chunk,
                    )
                    size += len(chunk)
                    seq += 1
                await conn.execute(
                    "UPDATE files SET size = $2 WHERE id = $1::uuid", record.id, size
                )
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
            raise _translated(exc) from exc
        return msgspec.structs.replace(record, size=size)

    async def get(self, file_id: str) -> FileRecord | None:
        uid = canonical_uuid(file_id)
        if uid is None:
            return None
        return await self._one(f"SELECT {_COLUMNS} FROM files WHERE id = $1::uuid", uid)

    async def by_path(self, path: str) -> FileRecord | None:
        return await self._one(f"SELECT {_COLUMNS} FROM files WHERE path = $1", path)

    async def read(self, record: FileRecord) -> AsyncIterator[bytes]:
        seq = 0
        remaining = record.size
        while remaining > 0:
            rows = await self._fetch(
                "SELECT data FROM file_chunks WHERE file_id = $1::uuid AND seq = $2",
                record.id,
                seq,
            )
            if not rows:
                raise FileNotFound(f"File {record.id} was deleted while it was being read")
            data: bytes = rows[0]["data"]
            remaining -= len(data)
            seq += 1
            yield data

    async def list(
        self, *, owner: str | None = None, flow_id: str | None = None
    ) -> builtins.list[FileRecord]:
        if flow_id is not None and canonical_uuid(flow_id) is None:
            return []
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM files WHERE ($1::text IS NULL OR owner = $1)"
            " AND flow_id IS NOT DISTINCT FROM $2::uuid ORDER BY created_at, id",
            owner,
            canonical_uuid(flow_id) if flow_id is not None else None,
        )
        return [_file(row) for row in rows]

    async def rename(self, file_id: str, name: str) -> FileRecord | None:
        uid = canonical_uuid(file_id)
        if uid is None:
            return None
        return await self._one(
            f"UPDATE files SET name = $2 WHERE id = $1::uuid RETURNING {_COLUMNS}", uid, name
        )

    async def delete(self, file_id: str) -> bool:
        uid = canonical_uuid(file_id)
        if uid is None:
            return False
        rows = await self._fetch("DELETE FROM files WHERE id = $1::uuid RETURNING id", uid)
        return bool(rows)

    async def delete_flow(self, flow_id: str) -> int:
        uid = canonical_uuid(flow_id)
        if uid is None:
            return 0
        rows = await self._fetch("DELETE FROM files WHERE flow_id = $1::uuid RETURNING id", uid)
        return len(rows)

    async def ping(self) -> None:
        await self._fetch("SELECT 1")

    async def close(self) -> None:
        return None  # the pool belongs to the flow store
