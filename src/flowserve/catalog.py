"""Saving flows and projects: validate first, then store, then tell every instance.

A flow is compiled against the component registry before anything is written;
an invalid flow raises one ``InvalidFlow`` (422) naming every problem, and
the store is untouched. After a write, the local graph cache drops the flow
and ``FlowEvents`` announces it to the other instances (Redis pub/sub); a
failed announcement is logged, not fatal: their freshness check catches up.

Deleting a flow (alone, in a batch, or with its project) also deletes what
other stores keep for it (``FlowLeftovers``): its conversation messages, as
Langflow's ``cascade_delete_flow`` does, and its event subscriptions. They go
first, so a store that cannot be reached fails the request (503) before
anything is deleted and a retry finishes the job; a flow that appears in the
meantime (a project gaining one) is cleared after.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import structlog

from flowserve.engine import Registry
from flowserve.errors import Conflict, FlowserveError, InvalidFlow, NotFound
from flowserve.flowcache import GraphCache, compile_record
from flowserve.flowfile import parse_flow
from flowserve.store.base import (
    DEFAULT_PROJECT_ID,
    ENDPOINT_NAME,
    FlowFilter,
    FlowRecord,
    FlowRevision,
    FlowStore,
    ProjectRecord,
    canonical_uuid,
)

log = structlog.get_logger(__name__)

ACCESS_TYPES = frozenset({"PRIVATE", "PUBLIC"})
# Bounds on what a saved flow may be: far above any real flow (Langflow's largest
# templates have tens of nodes), low enough that a hostile one cannot make every
# compile, listing and cache entry expensive.
MAX_NAME_LENGTH = 255
MAX_NODES = 2_000
# Flows of a project looked up at once before it is deleted (the rest are cleared after).
MAX_LISTED = 10_000


class FlowEvents(Protocol):
    async def publish(self, changes: dict[str, int | None]) -> None:
        """Announce flow id -> new version (None: deleted) to every instance."""
        ...


class FlowLeftovers(Protocol):
    async def delete_flow(self, flow_id: str) -> int:
        """Delete what this store keeps for a deleted flow; how many items went."""
        ...


class LocalFlowEvents:
    """One instance only (embedded): nobody else to tell."""

    async def publish(self, changes: dict[str, int | None]) -> None:
        return None


class ProjectNotFound(NotFound):
    code = "project_not_found"


def record_from_document(document: dict[str, Any], *, default_id: str | None = None) -> FlowRecord:
    """A Langflow flow document (export or bare graph) as a record; its graph becomes ``data``."""
    flow = parse_flow(document, default_id=default_id)
    raw = flow.raw
    inner = raw.get("data")
    data = inner if isinstance(inner, dict) else raw
    ttl = raw.get("session_ttl")
    return FlowRecord(
        id=flow.id,
        name=flow.name,
        data=data,
        description=flow.description,
        endpoint_name=flow.endpoint_name,
        access_type=flow.access_type,
        webhook=flow.webhook,
        mcp_enabled=flow.mcp_enabled,
        folder_id=flow.folder_id,
        session_ttl=ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None,
    )


# Flow files whose id is not a UUID (hand-written ones) get a stable UUID derived from it.
FILE_ID_NAMESPACE = uuid.UUID("5d0c6f4e-2f53-4a43-9a53-0b7a6e7f1c11")


def file_record(document: dict[str, Any]) -> FlowRecord:
    """A flow file as a record. Langflow's ids are UUIDs; any other id becomes a UUID derived
    from it, and (when the file names no endpoint) the flow's endpoint name, so a file with
    ``"id": "my-flow"`` is still run at ``/api/v1/run/my-flow``, on every instance alike."""
    record = record_from_document(document)
    flow_id = canonical_uuid(record.id)
    if flow_id is not None:
        return msgspec.structs.replace(record, id=flow_id)
    endpoint = record.endpoint_name
    if endpoint is None and ENDPOINT_NAME.match(record.id):
        endpoint = record.id
    derived = str(uuid.uuid5(FILE_ID_NAMESPACE, record.id))
    return msgspec.structs.replace(record, id=derived, endpoint_name=endpoint)


def problems_of(record: FlowRecord, registry: Registry) -> list[str]:
    """Everything wrong with a flow before it may be saved (empty: it compiles and fits)."""
    problems: list[str] = []
    if canonical_uuid(record.id) is None:
        problems.append(f"id '{record.id}' is not a UUID")
    if not record.name.strip():
        problems.append("name must not be empty")
    if len(record.name) > MAX_NAME_LENGTH:
        problems.append(f"name is {len(record.name)} characters long; at most {MAX_NAME_LENGTH}")
    nodes = record.data.get("nodes") if isinstance(record.data, dict) else None
    if isinstance(nodes, list) and len(nodes) > MAX_NODES:
        problems.append(f"the flow has {len(nodes)} nodes; at most {MAX_NODES}")
        return problems  # not worth compiling
    if record.endpoint_name is not None and not ENDPOINT_NAME.match(record.endpoint_name):
        problems.append(
            f"endpoint_name '{record.endpoint_name}' may only contain letters, digits,"
            " '-' and '_' (at most 200)"
        )
    if record.access_type not in ACCESS_TYPES:
        problems.append(f"access_type must be PRIVATE or PUBLIC, not '{record.access_type}'")
    if record.session_ttl is not None and record.session_ttl < 1:
        problems.append("session_ttl must be a positive number of seconds")
    try:
        compile_record(record, registry)
    except InvalidFlow as exc:
        problems.extend(exc.problems)
    return problems


class FlowCatalog:
    def __init__(
        self,
        flows: FlowStore,
        registry: Registry,
        cache: GraphCache,
        events: FlowEvents,
        leftovers: Sequence[FlowLeftovers] = (),
    ) -> None:
        self.flows = flows
        self._registry = registry
        self._cache = cache
        self._events = events
        self._leftovers = tuple(leftovers)

    async def checked(self, record: FlowRecord) -> FlowRecord:
        """The record ready to store: validated, id canonical, in an existing project."""
        problems = problems_of(record, self._registry)
        if problems:
            raise InvalidFlow(problems)
        folder_id = record.folder_id or DEFAULT_PROJECT_ID
        if canonical_uuid(folder_id) is None or await self.flows.get_project(folder_id) is None:
            raise ProjectNotFound(f"Project {folder_id} not found")
        return msgspec.structs.replace(
            record,
            id=canonical_uuid(record.id) or record.id,
            folder_id=canonical_uuid(folder_id),
        )

    async def placed(self, record: FlowRecord) -> FlowRecord:
        """A flow file's ``folder_id`` may name a project of the server it was exported from:
        keep it when it exists here, else keep the stored flow's project, else the default."""
        folder_id = record.folder_id
        known = folder_id is not None and canonical_uuid(folder_id) is not None
        if known and await self.flows.get_project(folder_id or "") is not None:
            return record
        stored = await self.flows.get(record.id) if canonical_uuid(record.id) else None
        return msgspec.structs.replace(record, folder_id=stored.folder_id if stored else None)

    async def create(self, record: FlowRecord) -> FlowRecord:
        stored = await self.flows.create(await self.checked(record))
        await self.changed({stored.id: stored.version})
        return stored

    async def upsert(self, record: FlowRecord) -> tuple[FlowRecord, bool]:
        stored, created = await self.flows.upsert(await self.checked(record))
        await self.changed({stored.id: stored.version})
        return stored, created

    async def replace(
        self, record: FlowRecord, revisions: Sequence[FlowRevision] | None
    ) -> FlowRecord | None:
        """Update an existing flow only while it is at one of ``revisions`` (None: at any).
        Each try is one compare-and-set write; None when none applied (nothing written)."""
        checked = await self.checked(record)
        candidates: Sequence[FlowRevision | None] = [None] if revisions is None else revisions
        for expected in candidates:
            stored = await self.flows.update(checked, expected=expected)
            if stored is not None:
                await self.changed({stored.id: stored.version})
                return stored
        return None

    async def upsert_many(self, records: list[FlowRecord]) -> list[tuple[FlowRecord, bool]]:
        """Validate all, then write all: one invalid flow and none is written."""
        problems: list[str] = []
        checked: list[FlowRecord] = []
        for index, record in enumerate(records):
            try:
                checked.append(await self.checked(record))
            except FlowserveError as exc:
                label = record.name if len(record.name) <= 80 else record.name[:77] + "..."
                problems.append(f"flow {index} ('{label}'): {exc.detail}")
        ids = [r.id for r in checked]
        if len(set(ids)) != len(ids):
            problems.append("the same flow id appears twice")
        if problems:
            raise InvalidFlow(problems)
        results = await self.flows.upsert_many(checked)
        await self.changed({stored.id: stored.version for stored, _ in results})
        return results

    async def delete(self, flow_ids: list[str]) -> list[str]:
        known = list(await self.flows.versions(flow_ids))
        await self._clear(known)
        deleted = await self.flows.delete_many(flow_ids)
        await self._clear([f for f in deleted if f not in known])
        await self.changed(dict.fromkeys(deleted))
        return deleted

    async def _clear(self, flow_ids: list[str]) -> None:
        for flow_id in flow_ids:
            for store in self._leftovers:
                removed = await store.delete_flow(flow_id)
                if removed:
                    log.info(
                        "flow_leftovers_deleted",
                        flow_id=flow_id,
                        store=type(store).__name__,
                        removed=removed,
                    )

    async def create_project(
        self, name: str, description: str = "", parent_id: str | None = None
    ) -> ProjectRecord:
        if not name.strip():
            raise InvalidFlow("project name must not be empty")
        record = ProjectRecord(
            id=str(uuid.uuid4()), name=name, description=description, parent_id=parent_id
        )
        return await self.flows.create_project(record)

    async def unique_project_name(self, name: str) -> str:
        taken = {p.name for p in await self.flows.list_projects()}
        candidate, n = name, 1
        while candidate in taken:
            candidate, n = f"{name} ({n})", n + 1
        return candidate

    async def delete_project(self, project_id: str) -> list[str]:
        if canonical_uuid(project_id) == DEFAULT_PROJECT_ID:
            raise Conflict("The default project cannot be deleted")
        pid = canonical_uuid(project_id)
        inside = FlowFilter(folder_id=pid) if pid is not None else None
        known = (
            [r.id for r in await self.flows.list(limit=MAX_LISTED, where=inside)] if inside else []
        )
        await self._clear(known)
        deleted = await self.flows.delete_project(project_id)
        if deleted is None:
            raise ProjectNotFound(f"Project {project_id} not found")
        await self._clear([f for f in deleted if f not in known])
        await self.changed(dict.fromkeys(deleted))
        return deleted

    async def changed(self, changes: dict[str, int | None]) -> None:
        """Drop the local compiled copies and tell the other instances."""
        if not changes:
            return
        self._cache.forget(changes)
        self._cache.deleted([flow_id for flow_id, version in changes.items() if version is None])
        try:
            await self._events.publish(changes)
        except FlowserveError as exc:
            log.warning("flow_change_not_announced", flow_ids=list(changes), detail=exc.detail)
