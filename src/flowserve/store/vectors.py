"""What both vector-store backends check the same way: names, dimensions, duplicates, k."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from flowserve.errors import DimensionMismatch, Invalid
from flowserve.store.base import (
    COLLECTION_NAME,
    MAX_DIMENSION,
    Chunk,
    CollectionRecord,
    EmbeddingModelRef,
    MetadataFilter,
)

MAX_K = 1000


class CollectionRow(Protocol):
    """A row of ``vector_collections`` as either backend reads it (by column name)."""

    def __getitem__(self, key: str, /) -> Any: ...


def collection_record(row: CollectionRow, created_at: datetime) -> CollectionRecord:
    """A collection row as a record; each backend reads its own ``created_at`` type."""
    return CollectionRecord(
        owner=row["owner"],
        name=row["name"],
        model=EmbeddingModelRef(row["model_provider"], row["model_name"]),
        dimension=row["dimension"],
        chunks=row["chunks"],
        created_at=created_at,
    )


def check_name(name: str) -> str:
    if not isinstance(name, str) or not COLLECTION_NAME.match(name):
        raise Invalid(
            f"'{str(name)[:120]}' is not a knowledge base name: use 1-100 letters, digits, "
            "spaces, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise Invalid(f"the number of results must be an integer from 1 to {MAX_K}, not {k!r}")
    return k


def check_filter(where: MetadataFilter | None) -> MetadataFilter | None:
    if not where:
        return None
    for key, values in where.items():
        if not isinstance(key, str) or not isinstance(values, list) or not values:
            raise Invalid("a metadata filter maps each key to a non-empty list of values")
    return where


def chunk_dimension(collection: CollectionRecord, chunks: Iterable[Chunk]) -> int | None:
    """The one dimension of ``chunks``, which must be the collection's if it has one."""
    dimensions = {len(c.embedding) for c in chunks}
    if not dimensions:
        return collection.dimension
    if len(dimensions) > 1:
        raise DimensionMismatch(
            f"chunks for '{collection.name}' have vectors of different dimensions "
            f"({sorted(dimensions)})"
        )
    dimension = dimensions.pop()
    if not 1 <= dimension <= MAX_DIMENSION:
        raise DimensionMismatch(f"a vector must have 1 to {MAX_DIMENSION} dimensions")
    if collection.dimension is not None and dimension != collection.dimension:
        raise dimension_error(collection, dimension)
    return dimension


def check_query(collection: CollectionRecord, embedding: tuple[float, ...]) -> None:
    if collection.dimension is not None and len(embedding) != collection.dimension:
        raise dimension_error(collection, len(embedding))


def dimension_error(collection: CollectionRecord, dimension: int) -> DimensionMismatch:
    return DimensionMismatch(
        f"knowledge base '{collection.name}' holds {collection.dimension}-dimensional "
        f"vectors (model {collection.model.provider}/{collection.model.name}); got "
        f"{dimension} dimensions: use the same embedding model, or a new knowledge base"
    )


def check_finite(chunks: Iterable[Chunk]) -> None:
    for chunk in chunks:
        if not all(math.isfinite(x) for x in chunk.embedding):
            raise Invalid("a vector holds a value that is not a finite number")


def content_hash(chunk: Chunk) -> str:
    return chunk.content_hash or hashlib.sha256(chunk.text.encode()).hexdigest()


def new_chunks(chunks: list[Chunk], stored: set[str], *, allow_duplicates: bool) -> list[Chunk]:
    """``chunks`` with their hashes set, less those already ``stored`` (unless allowed)."""
    kept: list[Chunk] = []
    seen = set(stored)
    for chunk in chunks:
        digest = content_hash(chunk)
        if not allow_duplicates:
            if digest in seen:
                continue
            seen.add(digest)
        kept.append(
            chunk
            if chunk.content_hash
            else Chunk(
                text=chunk.text,
                embedding=chunk.embedding,
                metadata=chunk.metadata,
                content_hash=digest,
            )
        )
    return kept
