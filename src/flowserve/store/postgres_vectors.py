"""``PostgresVectorStore``: collections and chunks with pgvector (``migrations/postgres/0004``).

It shares the flow store's pool. Vectors cross the wire as pgvector's text form
(``[1,2,3]``, cast in SQL), so no codec for the extension's type is needed.
Adding chunks locks the collection's row: concurrent ingests into one
collection agree on its dimension and on which chunks are duplicates.
"""

from __future__ import annotations

import builtins
import uuid
from typing import Any

import asyncpg
import msgspec

from flowserve.errors import KnowledgeBaseNotFound
from flowserve.store.base import (
    Chunk,
    ChunkHit,
    CollectionRecord,
    EmbeddingModelRef,
    MetadataFilter,
)
from flowserve.store.postgres import _CONNECTION_ERRORS, Connection, Pool, translate
from flowserve.store.vectors import (
    check_filter,
    check_finite,
    check_k,
    check_name,
    check_query,
    chunk_dimension,
    collection_record,
    new_chunks,
)

_COLLECTION = (
    "c.id::text AS id, c.owner, c.name, c.model_provider, c.model_name, c.dimension,"
    " c.created_at, (SELECT count(*) FROM vector_chunks k WHERE k.collection_id = c.id) AS chunks"
)


def _collection(row: asyncpg.Record) -> CollectionRecord:
    return collection_record(row, row["created_at"])


def _vector_text(vector: tuple[float, ...]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _where(where: MetadataFilter | None, args: list[Any]) -> str:
    """SQL for the filter: a stored string (or a list holding one) among the values, or a
    number/boolean whose JSON text is."""
    clauses: list[str] = []
    for key, values in (where or {}).items():
        args.extend((key, values))
        k, v = f"${len(args) - 1}", f"${len(args)}::text[]"
        clauses.append(
            f" AND (metadata -> {k} ?| {v} OR (jsonb_typeof(metadata -> {k}) <> 'string'"
            f" AND (metadata -> {k})::text = ANY({v})))"
        )
    return "".join(clauses)


class PostgresVectorStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def _fetch(self, sql: str, *args: Any) -> builtins.list[asyncpg.Record]:
        try:
            async with self._pool.acquire() as conn:
                rows: builtins.list[asyncpg.Record] = await conn.fetch(sql, *args)
                return rows
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
            raise translate(exc) from exc

    async def ensure_collection(
        self, owner: str, name: str, model: EmbeddingModelRef
    ) -> tuple[CollectionRecord, bool]:
        check_name(name)
        inserted = await self._fetch(
            "INSERT INTO vector_collections (id, owner, name, model_provider, model_name)"
            " VALUES ($1::uuid, $2, $3, $4, $5) ON CONFLICT (owner, name) DO NOTHING"
            " RETURNING id",
            str(uuid.uuid4()),
            owner,
            name,
            model.provider,
            model.name,
        )
        record = await self.get_collection(owner, name)
        if record is None:  # deleted between the two statements
            raise KnowledgeBaseNotFound(f"knowledge base '{name}' was deleted meanwhile")
        return record, bool(inserted)

    async def get_collection(self, owner: str, name: str) -> CollectionRecord | None:
        rows = await self._fetch(
            f"SELECT {_COLLECTION} FROM vector_collections c WHERE owner = $1 AND name = $2",
            owner,
            name,
        )
        return _collection(rows[0]) if rows else None

    async def list_collections(self, owner: str) -> builtins.list[CollectionRecord]:
        rows = await self._fetch(
            f"SELECT {_COLLECTION} FROM vector_collections c WHERE owner = $1"
            ' ORDER BY name COLLATE "C"',
            owner,
        )
        return [_collection(r) for r in rows]

    async def delete_collection(self, owner: str, name: str) -> bool:
        rows = await self._fetch(
            "DELETE FROM vector_collections WHERE owner = $1 AND name = $2 RETURNING id",
            owner,
            name,
        )
        return bool(rows)

    async def add(
        self, owner: str, name: str, chunks: builtins.list[Chunk], *, allow_duplicates: bool
    ) -> int:
        check_finite(chunks)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                return await self._add(conn, owner, name, chunks, allow_duplicates)
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
            raise translate(exc) from exc

    async def _add(
        self,
        conn: Connection,
        owner: str,
        name: str,
        chunks: builtins.list[Chunk],
        allow_duplicates: bool,
    ) -> int:
        row = await conn.fetchrow(
            f"SELECT {_COLLECTION} FROM vector_collections c WHERE owner = $1 AND name = $2"
            " FOR UPDATE",
            owner,
            name,
        )
        if row is None:
            raise KnowledgeBaseNotFound(f"knowledge base '{name}' does not exist")
        collection = _collection(row)
        dimension = chunk_dimension(collection, chunks)
        stored: set[str] = set()
        if not allow_duplicates and chunks:
            hashes = [c.content_hash for c in new_chunks(chunks, set(), allow_duplicates=True)]
            found = await conn.fetch(
                "SELECT content_hash FROM vector_chunks WHERE collection_id = $1::uuid"
                " AND content_hash = ANY($2::text[])",
                row["id"],
                hashes,
            )
            stored = {r["content_hash"] for r in found}
        kept = new_chunks(chunks, stored, allow_duplicates=allow_duplicates)
        if not kept:
            return 0
        if collection.dimension is None:
            await conn.execute(
                "UPDATE vector_collections SET dimension = $2 WHERE id = $1::uuid",
                row["id"],
                dimension,
            )
        await conn.executemany(
            "INSERT INTO vector_chunks (id, collection_id, content_hash, text, metadata, embedding)"
            " VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::text::vector)",
            [
                (
                    str(uuid.uuid4()),
                    row["id"],
                    c.content_hash,
                    c.text,
                    c.metadata,
                    _vector_text(c.embedding),
                )
                for c in kept
            ],
        )
        return len(kept)

    async def stored_hashes(self, owner: str, name: str, hashes: builtins.list[str]) -> set[str]:
        rows = await self._fetch(
            "SELECT DISTINCT k.content_hash FROM vector_chunks k JOIN vector_collections c"
            " ON c.id = k.collection_id WHERE c.owner = $1 AND c.name = $2"
            " AND k.content_hash = ANY($3::text[])",
            owner,
            name,
            hashes,
        )
        return {r["content_hash"] for r in rows}

    async def search(
        self,
        owner: str,
        name: str,
        embedding: tuple[float, ...] | None,
        *,
        k: int,
        where: MetadataFilter | None = None,
        include_embeddings: bool = False,
    ) -> builtins.list[ChunkHit]:
        check_k(k)
        check_filter(where)
        collection = await self.get_collection(owner, name)
        if collection is None:
            raise KnowledgeBaseNotFound(f"knowledge base '{name}' does not exist")
        columns = "id::text AS id, text, metadata" + (
            ", embedding::text AS embedding" if include_embeddings else ""
        )
        args: list[Any] = [owner, name]
        scope = "collection_id = (SELECT id FROM vector_collections WHERE owner = $1 AND name = $2)"
        if embedding is None:
            sql = f"SELECT {columns}, NULL::float8 AS score FROM vector_chunks WHERE {scope}"
            sql += _where(where, args) + f" ORDER BY seq LIMIT {k}"
        else:
            check_query(collection, embedding)
            args.append(_vector_text(embedding))
            query = f"${len(args)}::text::vector"
            sql = (
                f"SELECT {columns}, 1 - (embedding <=> {query}) AS score"
                f" FROM vector_chunks WHERE {scope}"
            )
            sql += _where(where, args) + f" ORDER BY embedding <=> {query}, seq LIMIT {k}"
        rows = await self._fetch(sql, *args)
        return [
            ChunkHit(
                id=r["id"],
                text=r["text"],
                metadata=r["metadata"],
                score=_score(r["score"]),
                embedding=tuple(msgspec.json.decode(r["embedding"]))
                if include_embeddings
                else None,
            )
            for r in rows
        ]

    async def ping(self) -> None:
        await self._fetch("SELECT 1 FROM vector_collections LIMIT 1")


def _score(value: float | None) -> float | None:
    # pgvector's cosine distance to a zero vector is NaN: no similarity at all.
    if value is None:
        return None
    return 0.0 if value != value else float(value)
