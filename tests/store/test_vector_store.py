"""The VectorStore contract, run against both backends: SQLite (embedded) and pgvector."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowserve.errors import DimensionMismatch, Invalid, KnowledgeBaseNotFound
from flowserve.store.base import Chunk, EmbeddingModelRef, VectorStore
from flowserve.store.postgres import PostgresFlowStore
from flowserve.store.postgres_vectors import PostgresVectorStore
from flowserve.store.sqlite import SqliteFlowStore
from flowserve.store.sqlite_vectors import SqliteVectorStore

MODEL = EmbeddingModelRef("OpenAI", "text-embedding-3-small")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backend's name, and for PostgreSQL a clean database's DSN."""
    dsn = request.getfixturevalue("clean_pg") if request.param == "postgres" else ""
    return request.param, dsn


@pytest.fixture
async def vectors(backend: tuple[str, str], tmp_path: Path) -> AsyncIterator[VectorStore]:
    name, dsn = backend
    if name == "sqlite":
        flows = await SqliteFlowStore.open(str(tmp_path / "vectors.db"))
        try:
            yield SqliteVectorStore(flows)
        finally:
            await flows.close()
    else:
        pg = await PostgresFlowStore.open(dsn)
        try:
            yield PostgresVectorStore(pg.pool)
        finally:
            await pg.close()


def chunk(text: str, *vector: float, **metadata: object) -> Chunk:
    return Chunk(text=text, embedding=tuple(vector), metadata=dict(metadata))


async def new_collection(store: VectorStore, name: str = "docs", owner: str = "") -> None:
    _, created = await store.ensure_collection(owner, name, MODEL)
    assert created


async def test_a_new_collection_is_empty_and_remembers_its_model(vectors: VectorStore) -> None:
    record, created = await vectors.ensure_collection("", "docs", MODEL)
    assert created
    assert (record.name, record.model, record.dimension, record.chunks) == (
        "docs",
        MODEL,
        None,
        0,
    )
    again, created_again = await vectors.ensure_collection(
        "", "docs", EmbeddingModelRef("Ollama", "other")
    )
    assert not created_again
    assert again.model == MODEL  # the first model stays


async def test_search_ranks_by_cosine_similarity_and_returns_k(vectors: VectorStore) -> None:
    await new_collection(vectors)
    stored = await vectors.add(
        "",
        "docs",
        [
            chunk("east", 1.0, 0.0, 0.0),
            chunk("north-east", 1.0, 1.0, 0.0),
            chunk("north", 0.0, 1.0, 0.0),
            chunk("down", 0.0, 0.0, -5.0),
        ],
        allow_duplicates=False,
    )
    assert stored == 4
    hits = await vectors.search("", "docs", (2.0, 0.1, 0.0), k=3)
    assert [h.text for h in hits] == ["east", "north-east", "north"]
    assert hits[0].score is not None
    assert hits[0].score > hits[1].score
    assert math.isclose(
        hits[1].score or 0.0, (2.1) / (math.hypot(2, 0.1) * math.sqrt(2)), rel_tol=1e-5
    )
    assert len(await vectors.search("", "docs", (1.0, 0.0, 0.0), k=1)) == 1
    assert len(await vectors.search("", "docs", (1.0, 0.0, 0.0), k=10)) == 4
    record = await vectors.get_collection("", "docs")
    assert record is not None
    assert (record.dimension, record.chunks) == (3, 4)


async def test_without_a_query_the_first_chunks_stored_come_back(vectors: VectorStore) -> None:
    await new_collection(vectors)
    await vectors.add(
        "", "docs", [chunk(f"c{i}", 1.0, float(i)) for i in range(5)], allow_duplicates=False
    )
    hits = await vectors.search("", "docs", None, k=3)
    assert [h.text for h in hits] == ["c0", "c1", "c2"]
    assert all(h.score is None for h in hits)


async def test_metadata_filter_matches_every_key_and_any_value(vectors: VectorStore) -> None:
    await new_collection(vectors)
    await vectors.add(
        "",
        "docs",
        [
            chunk("invoice 2025", 1.0, 0.0, tag="invoice", year=2025),
            chunk("invoice 2026", 1.0, 0.1, tag="invoice", year=2026),
            chunk("audit", 1.0, 0.2, tag=["audit", "finance"], year=2026),
            chunk("untagged", 1.0, 0.3),
        ],
        allow_duplicates=False,
    )
    query = (1.0, 0.0)
    tagged = await vectors.search("", "docs", query, k=10, where={"tag": ["invoice"]})
    assert [h.text for h in tagged] == ["invoice 2025", "invoice 2026"]
    both = await vectors.search("", "docs", query, k=10, where={"tag": ["invoice", "finance"]})
    assert {h.text for h in both} == {"invoice 2025", "invoice 2026", "audit"}
    recent = await vectors.search(
        "", "docs", query, k=10, where={"tag": ["invoice", "audit"], "year": ["2026"]}
    )
    assert [h.text for h in recent] == ["invoice 2026", "audit"]
    assert await vectors.search("", "docs", query, k=10, where={"missing": ["x"]}) == []
    unfiltered = await vectors.search("", "docs", None, k=10, where={"year": ["2025"]})
    assert [h.text for h in unfiltered] == ["invoice 2025"]
    assert unfiltered[0].metadata == {"tag": "invoice", "year": 2025}


async def test_a_vector_of_another_dimension_is_refused(vectors: VectorStore) -> None:
    await new_collection(vectors)
    await vectors.add("", "docs", [chunk("a", 1.0, 0.0, 0.0)], allow_duplicates=False)
    with pytest.raises(DimensionMismatch, match="3-dimensional"):
        await vectors.add("", "docs", [chunk("b", 1.0, 0.0)], allow_duplicates=False)
    with pytest.raises(DimensionMismatch):
        await vectors.search("", "docs", (1.0, 0.0, 0.0, 0.0), k=1)
    with pytest.raises(DimensionMismatch):  # mixed in one batch: nothing is written
        await vectors.add(
            "", "docs", [chunk("c", 1.0, 0.0, 0.0), chunk("d", 1.0)], allow_duplicates=False
        )
    record = await vectors.get_collection("", "docs")
    assert record is not None
    assert record.chunks == 1
    assert DimensionMismatch.status == 422


async def test_duplicates_are_skipped_unless_allowed(vectors: VectorStore) -> None:
    await new_collection(vectors)
    first = [chunk("same", 1.0, 0.0), chunk("same", 1.0, 0.0), chunk("other", 0.0, 1.0)]
    assert await vectors.add("", "docs", first, allow_duplicates=False) == 2
    assert await vectors.add("", "docs", [chunk("same", 1.0, 0.0)], allow_duplicates=False) == 0
    assert await vectors.add("", "docs", [chunk("same", 1.0, 0.0)], allow_duplicates=True) == 1
    record = await vectors.get_collection("", "docs")
    assert record is not None
    assert record.chunks == 3
    # A chunk without a content hash is identified by its text's SHA-256.
    other = hashlib.sha256(b"other").hexdigest()
    assert await vectors.stored_hashes("", "docs", [other, "nope"]) == {other}
    assert await vectors.stored_hashes("", "notes", [other]) == set()


async def test_collections_and_owners_are_isolated(vectors: VectorStore) -> None:
    await new_collection(vectors, "docs", owner="alice")
    await new_collection(vectors, "docs", owner="bob")
    await new_collection(vectors, "notes", owner="alice")
    await vectors.add("alice", "docs", [chunk("alice doc", 1.0, 0.0)], allow_duplicates=False)
    await vectors.add("bob", "docs", [chunk("bob doc", 1.0, 0.0, 0.0)], allow_duplicates=False)
    await vectors.add("alice", "notes", [chunk("alice note", 1.0, 0.0)], allow_duplicates=False)
    assert [h.text for h in await vectors.search("alice", "docs", (1.0, 0.0), k=5)] == ["alice doc"]
    assert [h.text for h in await vectors.search("bob", "docs", (1.0, 0.0, 0.0), k=5)] == [
        "bob doc"
    ]
    assert [c.name for c in await vectors.list_collections("alice")] == ["docs", "notes"]
    assert [c.name for c in await vectors.list_collections("bob")] == ["docs"]
    assert await vectors.list_collections("carol") == []
    with pytest.raises(KnowledgeBaseNotFound):
        await vectors.search("carol", "docs", (1.0, 0.0), k=1)
    with pytest.raises(KnowledgeBaseNotFound):
        await vectors.add("carol", "docs", [chunk("x", 1.0, 0.0)], allow_duplicates=False)


async def test_deleting_a_collection_deletes_its_chunks(vectors: VectorStore) -> None:
    await new_collection(vectors)
    await vectors.add("", "docs", [chunk("a", 1.0, 0.0)], allow_duplicates=False)
    assert await vectors.delete_collection("", "docs")
    assert not await vectors.delete_collection("", "docs")
    assert await vectors.get_collection("", "docs") is None
    await new_collection(vectors)  # the name is free again, and the new one is empty
    assert await vectors.search("", "docs", None, k=5) == []
    await vectors.add("", "docs", [chunk("b", 1.0, 0.0, 0.0)], allow_duplicates=False)
    record = await vectors.get_collection("", "docs")
    assert record is not None
    assert record.dimension == 3


async def test_bad_names_k_and_vectors_are_refused(vectors: VectorStore) -> None:
    for name in ("", "../etc", "a" * 101, "x;DROP TABLE", "-lead"):
        with pytest.raises(Invalid, match="knowledge base name"):
            await vectors.ensure_collection("", name, MODEL)
    await new_collection(vectors, "Team docs-2026.v1")
    for k in (0, -1, 1001):
        with pytest.raises(Invalid, match="number of results"):
            await vectors.search("", "Team docs-2026.v1", None, k=k)
    with pytest.raises(Invalid, match="finite"):
        await vectors.add(
            "", "Team docs-2026.v1", [chunk("nan", math.nan, 1.0)], allow_duplicates=False
        )


async def test_concurrent_first_ingests_agree_on_one_dimension(vectors: VectorStore) -> None:
    await new_collection(vectors)
    results = await asyncio.gather(
        vectors.add("", "docs", [chunk("two", 1.0, 0.0)], allow_duplicates=False),
        vectors.add("", "docs", [chunk("three", 1.0, 0.0, 0.0)], allow_duplicates=False),
        return_exceptions=True,
    )
    assert sum(1 for r in results if r == 1) == 1
    assert sum(1 for r in results if isinstance(r, DimensionMismatch)) == 1
    record = await vectors.get_collection("", "docs")
    assert record is not None
    assert record.chunks == 1


async def test_embeddings_come_back_when_asked(vectors: VectorStore) -> None:
    await new_collection(vectors)
    await vectors.add("", "docs", [chunk("a", 0.5, -0.25, 2.0)], allow_duplicates=False)
    [hit] = await vectors.search("", "docs", (0.5, -0.25, 2.0), k=1, include_embeddings=True)
    assert hit.embedding == (0.5, -0.25, 2.0)
    assert hit.score is not None
    assert math.isclose(hit.score, 1.0, rel_tol=1e-6)
    [plain] = await vectors.search("", "docs", (0.5, -0.25, 2.0), k=1)
    assert plain.embedding is None
