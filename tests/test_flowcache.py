"""The graph cache: one load for a burst of cold requests, fresh after changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from flowserve.catalog import file_record
from flowserve.components import build_registry
from flowserve.flowcache import GraphCache
from flowserve.store.sqlite import SqliteFlowStore
from tests.conftest import FLOWS


async def test_a_burst_of_cold_requests_loads_the_flow_once(tmp_path: Path) -> None:
    store = await SqliteFlowStore.open(str(tmp_path / "f.db"))
    try:
        record = file_record(json.loads((FLOWS / "prompt-echo.json").read_text()))
        await store.upsert(record)
        cache = GraphCache(store, build_registry())
        entries = await asyncio.gather(*(cache.get("prompt-echo") for _ in range(20)))
        assert len({id(e.graph) for e in entries}) == 1
        assert (await cache.get(record.id)).graph is entries[0].graph
    finally:
        await store.close()


async def test_an_announced_newer_version_replaces_the_cached_graph(tmp_path: Path) -> None:
    store = await SqliteFlowStore.open(str(tmp_path / "f.db"))
    try:
        record = file_record(json.loads((FLOWS / "prompt-echo.json").read_text()))
        await store.upsert(record)
        cache = GraphCache(store, build_registry())
        first = await cache.get(record.id)
        cache.apply({record.id: 1})  # an announcement of what we have: kept
        assert record.id in cache
        updated, _ = await store.upsert(record)
        cache.apply({record.id: updated.version})
        assert record.id not in cache
        second = await cache.get(record.id)
        assert second.record.version == 2
        assert second.graph is not first.graph
        cache.apply({record.id: None})
        assert record.id not in cache
    finally:
        await store.close()


async def test_a_flow_deleted_and_created_again_under_its_id_is_cached_again(
    tmp_path: Path,
) -> None:
    store = await SqliteFlowStore.open(str(tmp_path / "f.db"))
    try:
        record = file_record(json.loads((FLOWS / "prompt-echo.json").read_text()))
        await store.upsert(record)
        cache = GraphCache(store, build_registry())
        told: list[list[str]] = []
        cache.deleted_listeners.append(told.append)
        cache.apply({record.id: 3})  # another instance edited it twice
        await store.delete_many([record.id])
        cache.apply({record.id: None})  # ...then deleted it
        assert told == [[record.id]]
        again, _ = await store.upsert(record)  # created again: version 1
        assert again.version == 1
        await cache.get(record.id)
        # Cached, though version 1 is below the 3 once announced for this id.
        assert record.id in cache
    finally:
        await store.close()
