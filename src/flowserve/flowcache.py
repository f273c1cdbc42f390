"""The per-instance cache of compiled graphs, keyed by flow id and version.

Once warm, a run finds its graph here without touching the database. An entry
goes away when the flow changes: at once when this instance made the change
or another one announced it (Redis pub/sub, ``forget``); and, should an
announcement be lost, at the next freshness check (``revalidate``: one query
for the versions of every cached flow, run every few seconds in the
background, never per request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import msgspec
import structlog

from flowserve.engine import Graph, Registry, compile_flow
from flowserve.errors import FlowNotFound, FlowserveError
from flowserve.flowfile import parse_flow
from flowserve.singleflight import SingleFlight
from flowserve.store.base import FlowRecord, FlowStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CachedFlow:
    record: FlowRecord
    graph: Graph


def graph_document(record: FlowRecord) -> dict[str, object]:
    """The record as the flow document the parser reads (metadata from the columns)."""
    data = record.data
    inner = data.get("data")
    if "nodes" not in data and isinstance(inner, dict):
        data = inner  # a whole export stored as data: use its graph
    return {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "endpoint_name": record.endpoint_name,
        "webhook": record.webhook,
        "mcp_enabled": record.mcp_enabled,
        "access_type": record.access_type,
        "folder_id": record.folder_id,
        "data": data,
    }


def compile_record(record: FlowRecord, registry: Registry) -> Graph:
    """Parse and compile a stored flow; ``InvalidFlow`` naming every problem."""
    flow = parse_flow(graph_document(record))
    if flow.id != record.id:
        flow = msgspec.structs.replace(flow, id=record.id)
    return compile_flow(flow, registry)


class GraphCache:
    def __init__(self, flows: FlowStore, registry: Registry) -> None:
        self._flows = flows
        self._registry = registry
        self._entries: dict[str, CachedFlow] = {}
        self._refs: dict[str, str] = {}  # id or endpoint name -> flow id
        # Bumped by every invalidation: a load that raced one must not be cached.
        self._generation = 0
        self._announced: dict[str, int] = {}  # flow id -> newest version announced
        self._loading: SingleFlight[str, CachedFlow] = SingleFlight()
        # Told the ids of deleted flows (from this instance or announced by another), so
        # per-flow state elsewhere (metrics series) does not outlive the flow.
        self.deleted_listeners: list[Callable[[list[str]], None]] = []

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self._entries

    async def get(self, ref: str) -> CachedFlow:
        flow_id = self._refs.get(ref)
        if flow_id is not None:
            entry = self._entries.get(flow_id)
            if entry is not None:
                return entry
        # One load per ref at a time: a burst of cold requests compiles the flow once.
        return await self._loading.run(ref, lambda: self._load(ref))

    async def _load(self, ref: str) -> CachedFlow:
        generation = self._generation
        record = await self._flows.get(ref)
        if record is None:
            raise FlowNotFound(ref)
        entry = self._entries.get(record.id)
        if entry is None or entry.record.version != record.version:
            entry = CachedFlow(record, compile_record(record, self._registry))
        fresh = record.version >= self._announced.get(record.id, 0)
        if generation == self._generation and fresh:
            self._entries[record.id] = entry
            self._refs[record.id] = record.id
            self._refs[ref] = record.id
        return entry

    def forget(self, flow_ids: Iterable[str]) -> None:
        gone = set(flow_ids)
        self._generation += 1
        for flow_id in gone:
            self._entries.pop(flow_id, None)
        self._refs = {ref: fid for ref, fid in self._refs.items() if fid not in gone}

    def apply(self, changes: Mapping[str, int | None]) -> None:
        """An announcement from some instance: flow id -> its new version (None: deleted).

        Entries already at (or past) the announced version stay: the announcement may
        arrive after this instance loaded the new version itself.
        """
        stale: list[str] = []
        for flow_id, version in changes.items():
            if version is None:
                stale.append(flow_id)
                continue
            # A load in flight may have read an older row: never cache below this.
            self._announced[flow_id] = max(version, self._announced.get(flow_id, 0))
            entry = self._entries.get(flow_id)
            if entry is not None and entry.record.version < version:
                stale.append(flow_id)
        if stale:
            self.forget(stale)
        self.deleted([flow_id for flow_id, version in changes.items() if version is None])

    def deleted(self, flow_ids: list[str]) -> None:
        """These flows are gone: drop everything kept per flow id and tell the listeners."""
        if not flow_ids:
            return
        self.forget(flow_ids)
        for flow_id in flow_ids:
            # A flow created again under the same id starts again at version 1.
            self._announced.pop(flow_id, None)
        for listener in self.deleted_listeners:
            listener(flow_ids)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._refs.clear()

    async def revalidate(self) -> list[str]:
        """Drop every entry whose flow changed or vanished; the ids dropped."""
        cached = {fid: e.record.version for fid, e in self._entries.items()}
        if not cached:
            return []
        current = await self._flows.versions(list(cached))
        stale = [fid for fid, version in cached.items() if current.get(fid) != version]
        if stale:
            self.forget(stale)
        return stale

    async def keep_fresh(self, interval: float) -> None:
        """Run ``revalidate`` every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                stale = await self.revalidate()
            except FlowserveError as exc:
                log.warning("graph_cache_check_failed", detail=exc.detail)
                continue
            if stale:
                log.info("graph_cache_stale", flow_ids=stale)
