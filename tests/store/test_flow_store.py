"""The FlowStore contract, on every backend: PostgreSQL and the embedded SQLite file."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from flowserve.errors import Conflict, EndpointNameTaken
from flowserve.store.base import (
    DEFAULT_PROJECT_ID,
    FlowFilter,
    FlowRecord,
    FlowRevision,
    FlowStore,
    ProjectRecord,
)
from flowserve.store.postgres import PostgresFlowStore
from flowserve.store.sqlite import SqliteFlowStore

GRAPH = {"nodes": [], "edges": [], "viewport": {"x": 1.5, "y": -2, "zoom": 1}, "note": "héllo ✓"}


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "flows.db")
    return "postgres", request.getfixturevalue("clean_pg")


@pytest.fixture
async def store(location: tuple[str, str]) -> AsyncIterator[FlowStore]:
    backend, where = location
    opened: FlowStore
    if backend == "sqlite":
        opened = await SqliteFlowStore.open(where)
    else:
        opened = await PostgresFlowStore.open(where)
    yield opened
    await opened.close()


def record(name: str = "flow", **changes: object) -> FlowRecord:
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "name": name,
        "data": GRAPH,
        "folder_id": DEFAULT_PROJECT_ID,
    }
    values.update(changes)
    return FlowRecord(**values)  # type: ignore[arg-type]


async def test_upsert_creates_then_updates_with_a_new_version(store: FlowStore) -> None:
    flow = record(endpoint_name="first")
    created, was_created = await store.upsert(flow)
    assert was_created
    assert created.version == 1
    assert created.data == GRAPH
    assert created.created_at is not None
    updated, was_created = await store.upsert(FlowRecord(**{**_fields(flow), "name": "renamed"}))
    assert not was_created
    assert updated.version == 2
    assert updated.name == "renamed"
    assert updated.created_at == created.created_at


async def test_flows_are_found_by_id_or_endpoint_name(store: FlowStore) -> None:
    flow, _ = await store.upsert(record(endpoint_name="by-name"))
    by_id = await store.get(flow.id)
    by_id_upper = await store.get(flow.id.upper())
    by_name = await store.get("by-name")
    assert by_id is not None
    assert by_name is not None
    assert by_id_upper is not None
    assert by_id.id == by_name.id == by_id_upper.id == flow.id
    assert await store.get("no-such-flow") is None
    assert await store.get(str(uuid.uuid4())) is None


async def test_endpoint_name_clash_is_refused_and_nothing_is_written(store: FlowStore) -> None:
    await store.upsert(record(endpoint_name="taken"))
    intruder = record(endpoint_name="taken")
    with pytest.raises(EndpointNameTaken):
        await store.upsert(intruder)
    with pytest.raises(EndpointNameTaken):
        await store.create(record(endpoint_name="taken"))
    assert await store.get(intruder.id) is None


async def test_create_refuses_an_existing_id(store: FlowStore) -> None:
    flow = await store.create(record())
    with pytest.raises(Conflict):
        await store.create(record(id=flow.id))


async def test_listing_pages_and_filters(store: FlowStore) -> None:
    for name in ("c", "a", "b", "a"):
        await store.upsert(record(name))
    names = [f.name for f in await store.list(limit=10)]
    assert names == ["a", "a", "b", "c"]
    assert [f.name for f in await store.list(limit=2, offset=2)] == ["b", "c"]
    assert await store.count() == 4
    only_a = FlowFilter(name="a")
    assert [f.name for f in await store.list(where=only_a)] == ["a", "a"]
    assert await store.count(only_a) == 2
    named, _ = await store.upsert(record("d", endpoint_name="dee"))
    assert [f.id for f in await store.list(where=FlowFilter(endpoint_name="dee"))] == [named.id]


async def test_batch_delete_reports_what_existed(store: FlowStore) -> None:
    one, _ = await store.upsert(record())
    two, _ = await store.upsert(record())
    deleted = await store.delete_many([one.id, two.id, str(uuid.uuid4()), "not-a-uuid"])
    assert sorted(deleted) == sorted([one.id, two.id])
    assert await store.count() == 0
    assert not await store.delete(one.id)


async def test_versions_answer_for_existing_flows_only(store: FlowStore) -> None:
    flow, _ = await store.upsert(record())
    await store.upsert(FlowRecord(**_fields(flow)))
    gone = str(uuid.uuid4())
    assert await store.versions([flow.id, gone]) == {flow.id: 2}


async def test_get_many_skips_unknown_ids(store: FlowStore) -> None:
    flow, _ = await store.upsert(record())
    found = await store.get_many([flow.id, str(uuid.uuid4()), "junk"])
    assert [f.id for f in found] == [flow.id]


async def test_projects_crud_and_deleting_a_project_deletes_its_flows(store: FlowStore) -> None:
    defaults = await store.list_projects()
    assert [p.id for p in defaults] == [DEFAULT_PROJECT_ID]
    project = await store.create_project(ProjectRecord(id=str(uuid.uuid4()), name="Team"))
    with pytest.raises(Conflict):
        await store.create_project(ProjectRecord(id=str(uuid.uuid4()), name="Team"))
    inside, _ = await store.upsert(record(folder_id=project.id))
    outside, _ = await store.upsert(record())
    renamed = await store.update_project(
        ProjectRecord(id=project.id, name="Renamed", description="d")
    )
    assert renamed is not None
    assert renamed.name == "Renamed"
    assert await store.delete_project(project.id) == [inside.id]
    assert await store.get(inside.id) is None
    assert await store.get(outside.id) is not None
    assert await store.get_project(project.id) is None
    assert await store.delete_project(project.id) is None


async def test_migrations_apply_once(store: FlowStore) -> None:
    assert await store.migrate() == []


async def test_concurrent_upserts_each_get_their_own_version(store: FlowStore) -> None:
    flow, _ = await store.upsert(record())
    results = await asyncio.gather(*(store.upsert(FlowRecord(**_fields(flow))) for _ in range(5)))
    assert sorted(r.version for r, _ in results) == [2, 3, 4, 5, 6]


def _fields(flow: FlowRecord) -> dict[str, object]:
    return {
        "id": flow.id,
        "name": flow.name,
        "data": flow.data,
        "endpoint_name": flow.endpoint_name,
        "folder_id": flow.folder_id,
    }


async def test_upsert_many_writes_all_or_nothing(store: FlowStore) -> None:
    await store.upsert(record(endpoint_name="held"))
    fine, clashing = record("fine"), record("clash", endpoint_name="held")
    with pytest.raises(EndpointNameTaken):
        await store.upsert_many([fine, clashing])
    assert await store.get(fine.id) is None
    results = await store.upsert_many([fine, record("other")])
    assert [created for _, created in results] == [True, True]


def revision(flow: FlowRecord) -> FlowRevision:
    assert flow.updated_at is not None
    return FlowRevision(flow.version, flow.updated_at)


async def test_listing_can_be_narrowed_to_some_ids(store: FlowStore) -> None:
    one, two, _ = [(await store.upsert(record(f"f{i}")))[0] for i in range(3)]
    wanted = FlowFilter(ids=(two.id, one.id, "not-a-uuid"))
    assert [f.id for f in await store.list(where=wanted)] == [one.id, two.id]
    assert await store.count(wanted) == 2
    assert await store.list(where=FlowFilter(ids=())) == []
    assert await store.count(FlowFilter(ids=())) == 0


async def test_update_compares_and_sets_the_revision(store: FlowStore) -> None:
    stored, _ = await store.upsert(record("before"))
    renamed = await store.update(
        msgspec.structs.replace(stored, name="after"), expected=revision(stored)
    )
    assert renamed is not None
    assert (renamed.name, renamed.version) == ("after", stored.version + 1)
    assert renamed.created_at == stored.created_at
    # The revision read before that write no longer matches: nothing is written.
    stale = await store.update(
        msgspec.structs.replace(stored, name="lost"), expected=revision(stored)
    )
    assert stale is None
    current = await store.get(stored.id)
    assert current is not None
    assert (current.name, current.version) == ("after", renamed.version)
    assert revision(current) == revision(renamed)  # what an ETag read now would carry
    anyhow = await store.update(msgspec.structs.replace(stored, name="any"), expected=None)
    assert anyhow is not None
    assert anyhow.version == renamed.version + 1
    missing = record("missing")
    assert await store.update(missing, expected=None) is None
    assert await store.get(missing.id) is None


async def test_only_one_of_two_writers_with_the_same_revision_wins(store: FlowStore) -> None:
    stored, _ = await store.upsert(record("base"))
    seen = revision(stored)
    results = await asyncio.gather(
        *(
            store.update(msgspec.structs.replace(stored, name=f"writer {i}"), expected=seen)
            for i in range(8)
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    current = await store.get(stored.id)
    assert current is not None
    assert (current.name, current.version) == (winners[0].name, stored.version + 1)


async def test_a_flow_created_again_does_not_match_an_old_revision(store: FlowStore) -> None:
    first, _ = await store.upsert(record("first"))
    await store.delete(first.id)
    again, _ = await store.upsert(msgspec.structs.replace(first, name="again"))
    assert again.version == first.version
    assert await store.update(again, expected=revision(first)) is None
