"""The composition root: open stores, pools and clients once, for app, worker and tests.

``async with open_services(settings) as services:`` yields everything a
request needs and closes it all on exit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import structlog

from flowserve.access import Access
from flowserve.components import build_registry
from flowserve.engine import Registry
from flowserve.errors import FlowserveError
from flowserve.flowfile import load_document, parse_flow
from flowserve.runner import Runner, compile_graph
from flowserve.settings import Settings, process_environment
from flowserve.store.base import (
    ENDPOINT_NAME,
    FlowRecord,
    FlowStore,
    KeyEvents,
    KeyStore,
    MessageStore,
    RateLimiter,
    canonical_uuid,
)
from flowserve.store.memory import MemoryMessageStore
from flowserve.store.memory_access import MemoryRateLimiter

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
    async with AsyncExitStack() as stack:
        flows = await open_flow_store(settings)
        stack.push_async_callback(flows.close)
        messages = MemoryMessageStore()
        stack.push_async_callback(messages.close)
        services = await stack.enter_async_context(
            _open_runtime(settings, flows, messages, registry, environment)
        )
        yield services


async def open_flow_store(settings: Settings, *, migrate: bool | None = None) -> FlowStore:
    """PostgreSQL when ``database_url`` is set, else the SQLite file; migrated when asked."""
    run_migrations = settings.migrate_on_start if migrate is None else migrate
    if settings.database_url:
        from flowserve.store.postgres import PostgresFlowStore

        return await PostgresFlowStore.open(settings.database_url, run_migrations=run_migrations)
    from flowserve.store.sqlite import SqliteFlowStore

    return await SqliteFlowStore.open(settings.sqlite_path, run_migrations=run_migrations)


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations to the configured flow database (``flowserve migrate``)."""
    store = await open_flow_store(settings, migrate=False)
    try:
        return await store.migrate()
    finally:
        await store.close()


@asynccontextmanager
async def _open_runtime(
    settings: Settings,
    flows: FlowStore,
    messages: MessageStore,
    registry: Registry,
    environment: Mapping[str, str] | None,
) -> AsyncIterator[Services]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False) as http,
        access_backends(settings) as (limiter, key_events),
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
            access=Access(settings, open_key_store(flows), limiter, key_events),
        )
        await seed_flows(services, settings.flows_path)
        try:
            yield services
        finally:
            await services.access.aclose()


def open_key_store(flows: FlowStore) -> KeyStore:
    """API keys live in the flow database, on the flow store's pool or connection."""
    from flowserve.store.postgres import PostgresFlowStore
    from flowserve.store.sqlite import SqliteFlowStore

    if isinstance(flows, PostgresFlowStore):
        from flowserve.store.postgres_keys import PostgresKeyStore

        return PostgresKeyStore(flows.pool)
    if isinstance(flows, SqliteFlowStore):
        from flowserve.store.sqlite_keys import SqliteKeyStore

        return SqliteKeyStore(flows)
    # Never fall back to memory: keys created now would vanish on restart.
    raise FlowserveError(f"No API key store for a {type(flows).__name__}")


@asynccontextmanager
async def access_backends(
    settings: Settings,
) -> AsyncIterator[tuple[RateLimiter, KeyEvents | None]]:
    """Rate limits and revocation news: shared through Redis when configured."""
    if not settings.redis_url:
        yield MemoryRateLimiter(), None
        return
    from flowserve.store.redis_access import RedisKeyEvents, RedisRateLimiter, connect

    async with connect(settings.redis_url) as client:
        yield (
            RedisRateLimiter(client, settings.redis_prefix, MemoryRateLimiter()),
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


# Flow files whose id is not a UUID (hand-written ones) get a stable UUID derived from it.
FILE_ID_NAMESPACE = uuid.UUID("5d0c6f4e-2f53-4a43-9a53-0b7a6e7f1c11")


def file_record(document: dict[str, object]) -> FlowRecord:
    """A flow file as a record. Langflow's ids are UUIDs; any other id becomes a UUID derived
    from it, and (when the file names no endpoint) the flow's endpoint name, so a file with
    ``"id": "my-flow"`` is still run at ``/api/v1/run/my-flow``, on every instance alike."""
    record = record_from_document(document)
    if canonical_uuid(record.id) is not None:
        return msgspec.structs.replace(record, id=canonical_uuid(record.id) or record.id)
    endpoint = record.endpoint_name
    if endpoint is None and ENDPOINT_NAME.match(record.id):
        endpoint = record.id
    flow_id = str(uuid.uuid5(FILE_ID_NAMESPACE, record.id))
    data = {**record.data, "id": flow_id}
    if endpoint is not None:
        data["endpoint_name"] = endpoint
    return msgspec.structs.replace(record, id=flow_id, endpoint_name=endpoint, data=data)


async def seed_flows(services: Services, directory: Path) -> list[FlowRecord]:
    """Upsert every ``*.json`` flow in ``directory`` by id; invalid files are logged, skipped."""
    seeded: list[FlowRecord] = []
    for path, content in await asyncio.to_thread(read_flow_files, directory):
        try:
            record = file_record(load_document(content))
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
