"""The composition root: open stores, pools and clients once, for app, worker and tests.

``async with open_services(settings) as services:`` yields everything a
request needs and closes it all on exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from flowserve.access import Access
from flowserve.components import build_registry
from flowserve.engine import Registry
from flowserve.errors import FlowserveError
from flowserve.flowfile import load_document, parse_flow
from flowserve.runner import Runner, compile_graph
from flowserve.settings import Settings, process_environment
from flowserve.store.base import FlowRecord, FlowStore, KeyEvents, MessageStore, RateLimiter
from flowserve.store.memory import (
    MemoryFlowStore,
    MemoryKeyStore,
    MemoryMessageStore,
    MemoryRateLimiter,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    flows: FlowStore
    messages: MessageStore
    registry: Registry
    runner: Runner
    http: httpx.AsyncClient
    access: Access

    async def health(self) -> dict[str, str]:
        """Each store's state: "ok" or why it is not."""
        states: dict[str, str] = {}
        for name, store in (("flows", self.flows), ("messages", self.messages)):
            try:
                await store.ping()
            except FlowserveError as exc:
                states[name] = f"error: {exc.detail}"
            else:
                states[name] = "ok"
        return states


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    environment: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> AsyncIterator[Services]:
    registry = registry if registry is not None else build_registry()
    flows = MemoryFlowStore()
    messages = MemoryMessageStore()
    keys = MemoryKeyStore()
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False) as http,
        _access_backends(settings) as (limiter, key_events),
    ):
        runner = Runner(
            flows=flows,
            messages=messages,
            registry=registry,
            environment=process_environment() if environment is None else environment,
            session_ttl=settings.session_ttl,
            run_timeout=settings.run_timeout,
            services={"http": http},
        )
        services = Services(
            settings=settings,
            flows=flows,
            messages=messages,
            registry=registry,
            runner=runner,
            http=http,
            access=Access(settings, keys, limiter, key_events),
        )
        await seed_flows(services, settings.flows_path)
        try:
            yield services
        finally:
            await services.access.aclose()


@asynccontextmanager
async def _access_backends(
    settings: Settings,
) -> AsyncIterator[tuple[RateLimiter, KeyEvents | None]]:
    """Rate limits and revocation news: shared through Redis when configured."""
    if not settings.redis_url:
        yield MemoryRateLimiter(), None
        return
    from flowserve.store.redis_access import RedisKeyEvents, RedisRateLimiter, connect

    async with connect(settings.redis_url) as client:
        yield (
            RedisRateLimiter(client, settings.redis_prefix),
            RedisKeyEvents(client, settings.redis_prefix),
        )


def record_from_document(
    document: dict[str, object], *, default_id: str | None = None
) -> FlowRecord:
    flow = parse_flow(document, default_id=default_id)
    return FlowRecord(
        id=flow.id,
        name=flow.name,
        data=flow.raw,
        description=flow.description,
        endpoint_name=flow.endpoint_name,
        access_type=flow.access_type,
        webhook=flow.webhook,
        mcp_enabled=flow.mcp_enabled,
        folder_id=flow.folder_id,
    )


async def seed_flows(services: Services, directory: Path) -> list[FlowRecord]:
    """Upsert every ``*.json`` flow in ``directory`` by id; invalid files are logged, skipped."""
    seeded: list[FlowRecord] = []
    for path, content in await asyncio.to_thread(read_flow_files, directory):
        try:
            record = record_from_document(load_document(content))
            compile_graph(record, services.registry)
            stored, _ = await services.flows.upsert(record)
        except FlowserveError as exc:
            log.error("flow_file_rejected", path=str(path), detail=exc.detail, code=exc.code)
            continue
        seeded.append(stored)
        log.info(
            "flow_loaded",
            path=str(path),
            flow_id=stored.id,
            name=stored.name,
            endpoint_name=stored.endpoint_name,
        )
    return seeded


def read_flow_files(directory: Path) -> list[tuple[Path, bytes]]:
    if not directory.is_dir():
        return []
    return [(path, path.read_bytes()) for path in sorted(directory.glob("*.json"))]
