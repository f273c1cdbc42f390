"""``SqliteVectorStore``: the embedded vector store, in the flow store's SQLite file.

Embeddings are stored as float32 blobs with their norm; a search reads the
collection's rows and ranks them by cosine similarity, brute force, on the flow
store's connection thread (never on the event loop). That is exact and fast
enough for the thousands of chunks an embedded server holds; PostgreSQL with
pgvector is the backend for more.
"""

from __future__ import annotations

import builtins
import heapq
import math
import operator
import sqlite3
import uuid
from array import array
from datetime import UTC, datetime
from typing import Any

import msgspec

from flowserve.errors import KnowledgeBaseNotFound
from flowserve.store.base import (
    Chunk,
    ChunkHit,
    CollectionRecord,
    EmbeddingModelRef,
    MetadataFilter,
    metadata_matches,
)
from flowserve.store.sqlite import SqliteFlowStore
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
    "c.id, c.owner, c.name, c.model_provider, c.model_name, c.dimension, c.created_at,"
    " (SELECT count(*) FROM vector_chunks k WHERE k.collection_id = c.id) AS chunks"
)


def _collection(row: sqlite3.Row) -> CollectionRecord:
    return collection_record(row, datetime.fromisoformat(row["created_at"]))


def _get(conn: sqlite3.Connection, owner: str, name: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {_COLLECTION} FROM vector_collections c WHERE owner = ? AND name = ?",
        (owner, name),
    ).fetchone()
    return row


def _blob(vector: tuple[float, ...]) -> bytes:
    return array("f", vector).tobytes()


def _floats(blob: bytes) -> array[float]:
    values = array("f")
    values.frombytes(blob)
    return values


def _norm(vector: tuple[float, ...] | array[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


class SqliteVectorStore:
    def __init__(self, flows: SqliteFlowStore) -> None:
        self._flows = flows

    async def ensure_collection(
        self, owner: str, name: str, model: EmbeddingModelRef
    ) -> tuple[CollectionRecord, bool]:
        check_name(name)

        def work(conn: sqlite3.Connection) -> tuple[CollectionRecord, bool]:
            created = conn.execute(
                "INSERT INTO vector_collections (id, owner, name, model_provider, model_name,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner, name) DO NOTHING",
                (
                    str(uuid.uuid4()),
                    owner,
                    name,
                    model.provider,
                    model.name,
                    datetime.now(UTC).isoformat(timespec="microseconds"),
                ),
            ).rowcount
            row = _get(conn, owner, name)
            assert row is not None  # inserted or already there, in this transaction
            return _collection(row), created == 1

        return await self._flows.transaction(work)

    async def get_collection(self, owner: str, name: str) -> CollectionRecord | None:
        row = await self._flows.call(lambda c: _get(c, owner, name))
        return _collection(row) if row is not None else None

    async def list_collections(self, owner: str) -> builtins.list[CollectionRecord]:
        sql = f"SELECT {_COLLECTION} FROM vector_collections c WHERE owner = ? ORDER BY name"
        rows = await self._flows.call(lambda c: c.execute(sql, (owner,)).fetchall())
        return [_collection(r) for r in rows]

    async def delete_collection(self, owner: str, name: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            sql = "DELETE FROM vector_collections WHERE owner = ? AND name = ?"
            return conn.execute(sql, (owner, name)).rowcount == 1

        return await self._flows.transaction(work)

    async def add(
        self, owner: str, name: str, chunks: builtins.list[Chunk], *, allow_duplicates: bool
    ) -> int:
        check_finite(chunks)

        def work(conn: sqlite3.Connection) -> int:
            row = _get(conn, owner, name)
            if row is None:
                raise KnowledgeBaseNotFound(f"knowledge base '{name}' does not exist")
            collection = _collection(row)
            dimension = chunk_dimension(collection, chunks)
            stored: set[str] = set()
            if not allow_duplicates:
                stored = {
                    r[0]
                    for r in conn.execute(
                        "SELECT content_hash FROM vector_chunks WHERE collection_id = ?",
                        (row["id"],),
                    )
                }
            kept = new_chunks(chunks, stored, allow_duplicates=allow_duplicates)
            if not kept:
                return 0
            if collection.dimension is None:
                conn.execute(
                    "UPDATE vector_collections SET dimension = ? WHERE id = ?",
                    (dimension, row["id"]),
                )
            conn.executemany(
                "INSERT INTO vector_chunks (id, collection_id, content_hash, text, metadata,"
                " embedding, norm) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        str(uuid.uuid4()),
                        row["id"],
                        c.content_hash,
                        c.text,
                        msgspec.json.encode(c.metadata).decode(),
                        _blob(c.embedding),
                        _norm(c.embedding),
                    )
                    for c in kept
                ],
            )
            return len(kept)

        return await self._flows.transaction(work)

    async def stored_hashes(self, owner: str, name: str, hashes: builtins.list[str]) -> set[str]:
        wanted = set(hashes)
        sql = (
            "SELECT DISTINCT k.content_hash FROM vector_chunks k JOIN vector_collections c"
            " ON c.id = k.collection_id WHERE c.owner = ? AND c.name = ?"
        )
        rows = await self._flows.call(lambda c: c.execute(sql, (owner, name)).fetchall())
        return {r[0] for r in rows} & wanted

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

        def work(conn: sqlite3.Connection) -> builtins.list[ChunkHit]:
            row = _get(conn, owner, name)
            if row is None:
                raise KnowledgeBaseNotFound(f"knowledge base '{name}' does not exist")
            if embedding is not None:
                check_query(_collection(row), embedding)
            rows = conn.execute(
                "SELECT seq, id, text, metadata, embedding, norm FROM vector_chunks"
                " WHERE collection_id = ? ORDER BY seq",
                (row["id"],),
            )
            return _rank(rows, embedding, k, where, include_embeddings)

        return await self._flows.call(work)

    async def ping(self) -> None:
        await self._flows.call(
            lambda c: c.execute("SELECT 1 FROM vector_collections LIMIT 1").fetchone()
        )


def _rank(
    rows: sqlite3.Cursor,
    query: tuple[float, ...] | None,
    k: int,
    where: MetadataFilter | None,
    include_embeddings: bool,
) -> list[ChunkHit]:
    """The best ``k`` rows by cosine similarity (ties: first stored first), or the first ``k``."""
    scored: list[tuple[float, int, sqlite3.Row, dict[str, Any]]] = []
    query_norm = _norm(query) if query is not None else 0.0
    for row in rows:
        metadata = msgspec.json.decode(row["metadata"])
        if not metadata_matches(metadata, where):
            continue
        if query is None:
            scored.append((0.0, row["seq"], row, metadata))
            if len(scored) == k:
                break
            continue
        denominator = query_norm * row["norm"]
        dot = sum(map(operator.mul, query, _floats(row["embedding"])))
        scored.append((dot / denominator if denominator else 0.0, row["seq"], row, metadata))
    best = scored if query is None else heapq.nsmallest(k, scored, key=lambda s: (-s[0], s[1]))
    return [
        ChunkHit(
            id=row["id"],
            text=row["text"],
            metadata=metadata,
            score=score if query is not None else None,
            embedding=tuple(_floats(row["embedding"])) if include_embeddings else None,
        )
        for score, _seq, row, metadata in best
    ]
