"""The composition root: open stores, pools and clients once, for app, worker and tests.

``async with open_services(settings) as services:`` yields everything a
request needs and closes it all on exit. Backends follow the settings:
PostgreSQL when ``database_url`` is set (else a SQLite file at
``sqlite_path``), Redis when ``redis_url`` is set (else in-process messages,
and no other instance to tell about flow changes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import structlog

from flowserve import __version__
from flowserve.access import Access
from flowserve.catalog import (
    FlowCatalog,
    FlowEvents,
    LocalFlowEvents,
    file_record,
    record_from_document,
)
from flowserve.components import build_registry
from flowserve.components.knowledge import EMBEDDING_DEFAULT, VECTOR_STORE
from flowserve.components.llm import PROVIDER_SESSION
from flowserve.components.outbound import new_http_client
from flowserve.components.sql import SQL_SERVICE
from flowserve.engine import Registry
from flowserve.errors import FlowserveError
from flowserve.files import Files
from flowserve.flowfile import load_document
from flowserve.jobs import Jobs, open_jobs
from flowserve.metrics import Metrics, RunObservers
from flowserve.providers import Pool, new_session
from flowserve.runner import Runner
from flowserve.settings import Settings, SettingsError, otlp_endpoint, process_environment
from flowserve.store.base import (
    FileStore,
    FlowRecord,
    FlowStore,
    KeyEvents,
    KeyStore,
    MessageStore,
    QueryDatabase,
    RateLimiter,
    VectorStore,
)
from flowserve.store.memory import MemoryMessageStore
from flowserve.store.memory_access import MemoryRateLimiter
from flowserve.tracing import RunTracer, build_tracer

if TYPE_CHECKING:
    from flowserve.store.redis import RedisClient

__all__ = ["Services", "file_record", "open_services", "record_from_document", "seed_flows"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    flows: FlowStore
    messages: MessageStore
    registry: Registry
    runner: Runner
    http: httpx.AsyncClient
    catalog: FlowCatalog
    access: Access
    jobs: Jobs
    # The shared Redis client when FLOWSERVE_REDIS_URL is set (rate limits, jobs), else None.
    redis: RedisClient | None = None
    # Background loops (cache freshness, flow-change listener), cancelled on close.
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Prometheus metrics of this instance; the job worker reports queue depth and outcomes here.
    metrics: Metrics = field(default_factory=Metrics)
    # Uploaded files (api/files.py; the File and SaveToFile components as services["files"]).
    files: Files | None = None

    async def health(self) -> dict[str, str]:
        """Each store's state: "ok" or why it is not."""
        states: dict[str, str] = {}
        stores: list[tuple[str, Any]] = [
            ("flows", self.flows),
            ("messages", self.messages),
            ("jobs", self.jobs.queue),
        ]
        if self.files is not None:
            stores.append(("files", self.files.store))
        for name, store in stores:
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
    metrics: Metrics | None = None,
) -> AsyncIterator[Services]:
    registry = registry if registry is not None else build_registry()
    metrics = metrics if metrics is not None else Metrics()
    tracer = build_tracer(otlp_endpoint(), service_version=__version__)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(_shutting_down(tracer))
        flows = await open_flow_store(settings)
        stack.push_async_callback(flows.close)
        files = await open_files(settings, flows)
        stack.push_async_callback(files.store.close)
        redis_client, messages, events = _open_redis(settings, stack)
        stack.push_async_callback(messages.close)
        http = await stack.enter_async_context(
            new_http_client(settings.http_pool_limit, settings.http_pool_timeout)
        )
        provider_http = await stack.enter_async_context(
            new_session(settings.provider_pool_limit, settings.provider_pool_timeout)
        )
        sql_database = _open_query_database(settings, stack)
        env = process_environment() if environment is None else environment
        runner = Runner(
            flows=flows,
            messages=messages,
            registry=registry,
            environment=env,
            session_ttl=settings.session_ttl,
            run_timeout=settings.run_timeout,
            max_loop_iterations=settings.max_loop_iterations,
            services={
                **component_services(
                    settings,
                    http,
                    env,
                    provider_http,
                    sql_database,
                    vectors=open_vector_store(flows),
                ),
                "files": files,
            },
            outcome_observer=RunObservers(metrics.run_finished, *([tracer] if tracer else [])),
        )
        runner.cache.deleted_listeners.append(metrics.forget_flows)
        jobs = await stack.enter_async_context(open_jobs(settings, runner))
        services = Services(
            settings=settings,
            flows=flows,
            messages=messages,
            registry=registry,
            runner=runner,
            http=http,
            catalog=FlowCatalog(
                flows,
                registry,
                runner.cache,
                events,
                leftovers=(messages, jobs.subscriptions, files.store),
            ),
            access=Access(
                settings, open_key_store(flows), *access_backends(settings, redis_client)
            ),
            jobs=jobs,
            redis=redis_client,
            metrics=metrics,
            files=files,
        )
        # Runs before the Redis client closes: it flushes key usage and stops listening.
        stack.push_async_callback(services.access.aclose)
        stack.push_async_callback(_cancel, services.tasks)
        _start(services.tasks, runner.cache.keep_fresh(settings.flow_cache_check))
        await _listen_for_changes(services, events)
        if settings.flows_dir:
            await seed_flows(services, settings.flows_path)
        yield services


@asynccontextmanager
async def _shutting_down(tracer: RunTracer | None) -> AsyncIterator[None]:
    """Flush the spans still buffered when the services close."""
    try:
        yield
    finally:
        if tracer is not None:
            await asyncio.to_thread(tracer.shutdown)


def component_services(
    settings: Settings,
    http: httpx.AsyncClient,
    environment: Mapping[str, str],
    provider_http: Pool | None = None,
    sql_database: QueryDatabase | None = None,
    *,
    vectors: VectorStore | None = None,
) -> dict[str, object]:
    """What components may use beyond the run's variables (see components/outbound.py).

    The SSRF allowlist and search endpoints come from settings, never from the
    request's global-variable headers, so a caller cannot switch the guard off.
    """
    services: dict[str, object] = {"http": http, "environment": environment}
    if provider_http is not None:
        services[PROVIDER_SESSION] = provider_http
    if settings.outbound_allowlist:
        services["outbound_allowlist"] = settings.outbound_allowlist
    if settings.web_search_url:
        services["web_search_url"] = settings.web_search_url
    if settings.news_search_url:
        services["news_search_url"] = settings.news_search_url
    if vectors is not None:
        services[VECTOR_STORE] = vectors
    services[EMBEDDING_DEFAULT] = settings.embedding_model
    # The data-source components (issue 15): their endpoints and the operator's database.
    services.update(
        arxiv_url=settings.arxiv_url,
        assemblyai_url=settings.assemblyai_url,
        assemblyai_poll_interval=settings.assemblyai_poll_interval,
        assemblyai_timeout=settings.assemblyai_timeout,
    )
    if sql_database is not None:
        services[SQL_SERVICE] = sql_database
    return services


def _open_query_database(settings: Settings, stack: AsyncExitStack) -> QueryDatabase | None:
    if not settings.sql_database_url:
        return None
    from flowserve.store.query_db import open_query_database

    database = open_query_database(
        settings.sql_database_url,
        allow_writes=settings.sql_allow_writes,
        timeout=settings.sql_timeout,
        max_rows=settings.sql_max_rows,
    )
    stack.push_async_callback(database.close)
    return database


def _open_redis(
    settings: Settings, stack: AsyncExitStack
) -> tuple[RedisClient | None, MessageStore, FlowEvents]:
    if not settings.redis_url:
        return None, MemoryMessageStore(), LocalFlowEvents()
    from flowserve.store.redis import RedisFlowEvents, RedisMessageStore, connect

    client = connect(
        settings.redis_url,
        pool_size=settings.redis_pool_size,
        pool_timeout=settings.redis_pool_timeout,
    )
    stack.push_async_callback(client.aclose)
    return (
        client,
        RedisMessageStore(client, settings.redis_prefix),
        RedisFlowEvents(client, settings.redis_prefix),
    )


async def _listen_for_changes(services: Services, events: FlowEvents) -> None:
    from flowserve.store.redis import RedisFlowEvents

    if not isinstance(events, RedisFlowEvents):
        return
    cache = services.runner.cache
    subscribed = asyncio.Event()
    _start(services.tasks, events.listen(cache.apply, cache.clear, subscribed=subscribed))
    # Serve only once other instances' changes can reach us (bounded: Redis may be down,
    # then the freshness check covers until the listener reconnects).
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2.0):
            await subscribed.wait()


def _start(tasks: list[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
    tasks.append(asyncio.create_task(work))


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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


def open_vector_store(flows: FlowStore) -> VectorStore:
    """Knowledge bases live in the flow database: pgvector there, or the SQLite file."""
    from flowserve.store.postgres import PostgresFlowStore
    from flowserve.store.sqlite import SqliteFlowStore

    if isinstance(flows, PostgresFlowStore):
        from flowserve.store.postgres_vectors import PostgresVectorStore

        return PostgresVectorStore(flows.pool)
    if isinstance(flows, SqliteFlowStore):
        from flowserve.store.sqlite_vectors import SqliteVectorStore

        return SqliteVectorStore(flows)
    raise FlowserveError(f"No vector store for a {type(flows).__name__}")


def access_backends(
    settings: Settings, redis_client: RedisClient | None
) -> tuple[RateLimiter, KeyEvents | None]:
    """Rate limits and revocation news: shared through Redis when configured."""
    if redis_client is None:
        return MemoryRateLimiter(), None
    from flowserve.store.redis_access import RedisKeyEvents, RedisRateLimiter

    return (
        RedisRateLimiter(redis_client, settings.redis_prefix, MemoryRateLimiter()),
        RedisKeyEvents(redis_client, settings.redis_prefix),
    )


async def open_files(settings: Settings, flows: FlowStore) -> Files:
    """The file store the settings choose: PostgreSQL (on the flow store's pool) or a directory."""
    backend = settings.files_backend
    if backend == "auto":
        backend = "database" if settings.database_url else "directory"
    store: FileStore
    if backend == "database":
        from flowserve.store.postgres import PostgresFlowStore

        if not isinstance(flows, PostgresFlowStore):
            raise SettingsError(
                "FLOWSERVE_FILES_BACKEND=database needs FLOWSERVE_DATABASE_URL (PostgreSQL);"
                " use FLOWSERVE_FILES_BACKEND=directory with the embedded store"
            )
        from flowserve.store.postgres_files import PostgresFileStore

        store = PostgresFileStore(flows.pool)
    else:
        from flowserve.store.directory_files import DirectoryFileStore

        store = await DirectoryFileStore.open(settings.files_path)
    return Files(store, max_bytes=settings.max_file_bytes, provider=backend)


async def open_flow_store(settings: Settings, *, migrate: bool | None = None) -> FlowStore:
    """PostgreSQL when ``database_url`` is set, else the SQLite file; migrated when asked."""
    run_migrations = settings.migrate_on_start if migrate is None else migrate
    if settings.database_url:
        from flowserve.store.postgres import PostgresFlowStore

        return await PostgresFlowStore.open(
            settings.database_url,
            run_migrations=run_migrations,
            pool_size=settings.database_pool_size,
            pool_timeout=settings.database_pool_timeout,
        )
    from flowserve.store.sqlite import SqliteFlowStore

    return await SqliteFlowStore.open(settings.sqlite_path, run_migrations=run_migrations)


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations to the configured flow database (``flowserve migrate``)."""
    store = await open_flow_store(settings, migrate=False)
    try:
        return await store.migrate()
    finally:
        await store.close()


class ImportReport(msgspec.Struct):
    created: list[str] = msgspec.field(default_factory=list)
    updated: list[str] = msgspec.field(default_factory=list)
    unchanged: list[str] = msgspec.field(default_factory=list)
    rejected: dict[str, str] = msgspec.field(default_factory=dict)


_COMPARED = (
    "name",
    "description",
    "endpoint_name",
    "data",
    "access_type",
    "webhook",
    "mcp_enabled",
    "session_ttl",
)


def _same(stored: FlowRecord, record: FlowRecord) -> bool:
    return all(getattr(stored, f) == getattr(record, f) for f in _COMPARED) and (
        record.folder_id is None or record.folder_id == stored.folder_id
    )


async def import_flows(catalog: FlowCatalog, directory: Path) -> ImportReport:
    """Upsert every ``*.json`` flow file in ``directory`` by id, idempotently.

    An unchanged file is not written again (its version stays); an invalid one
    is reported and skipped, the others are still imported.
    """
    report = ImportReport()
    for path, content in await asyncio.to_thread(read_flow_files, directory):
        try:
            record = await catalog.placed(file_record(load_document(content)))
            stored = await catalog.flows.get(record.id)
            if stored is not None and _same(stored, record):
                report.unchanged.append(stored.id)
                continue
            saved, created = await catalog.upsert(record)
        except FlowserveError as exc:
            log.error("flow_file_rejected", path=str(path), detail=exc.detail, code=exc.code)
            report.rejected[str(path)] = exc.detail
            continue
        (report.created if created else report.updated).append(saved.id)
        log.info("flow_loaded", path=str(path), flow_id=saved.id, version=saved.version)
    return report


async def seed_flows(services: Services, directory: Path) -> ImportReport:
    """``--flows-dir``: import the directory's flow files at startup."""
    return await import_flows(services.catalog, directory)


def read_flow_files(directory: Path) -> list[tuple[Path, bytes]]:
    if not directory.is_dir():
        return []
    return [(path, path.read_bytes()) for path in sorted(directory.glob("*.json"))]
