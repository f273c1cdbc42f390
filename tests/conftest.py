"""Shared fixtures: settings, the app inside its lifespan, a real uvicorn server.

``client`` drives the app through httpx's ASGI transport (fast, but it buffers
whole responses); ``server`` runs the same app in uvicorn on a loopback port,
for anything that must be observed over a real socket (streaming).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette

from flowserve.app import create_app
from flowserve.engine import Registry
from flowserve.settings import Settings
from flowserve.store.base import DEFAULT_PROJECT_ID
from flowserve.store.postgres import PostgresFlowStore

FIXTURES = Path(__file__).parent / "fixtures"
FLOWS = FIXTURES / "flows"
RESPONSES = FIXTURES / "langflow-1.13-responses"

# Flows every API test can run without an LLM.
CORE_FLOWS = ("hello-world.json", "prompt-echo.json")


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "flows"
    directory.mkdir()
    for name in CORE_FLOWS:
        shutil.copy(FLOWS / name, directory / name)
    return directory


@pytest.fixture
def settings(flows_dir: Path, tmp_path: Path) -> Settings:
    """Embedded backends (a SQLite file in the test's tmp dir, in-process messages)."""
    return Settings(
        flows_dir=str(flows_dir),
        auth="off",
        log_level="warning",
        sqlite_path=str(tmp_path / "flowserve.db"),
    )


AppFactory = Callable[..., Starlette]


async def _serve_in_lifespan(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowserve") as client:
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _serve_in_lifespan(create_app(settings)):
        yield c


class LiveServer:
    """The app in a real uvicorn server on 127.0.0.1, inside the test's event loop."""

    def __init__(self, app: Starlette, *, lifespan: Literal["on", "off"] = "on") -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.sock.close()


@pytest.fixture
def live_server(settings: Settings) -> Callable[..., LiveServer]:
    def make(registry: Registry | None = None, **changes: Any) -> LiveServer:
        app_settings = settings.replace(**changes) if changes else settings
        return LiveServer(create_app(app_settings, registry=registry))

    return make


# ---- Real PostgreSQL and Redis, isolated per test session -----------------------------------
# One database `flowserve_test_<random>` created from `postgres` and dropped at the end; one
# Redis key prefix `flowserve_test_<random>:` whose keys (and only those) are deleted at the
# end. Each test gets a clean flows schema (TRUNCATE) and its own sub-prefix in Redis.

PG_ADMIN_DSN = os.environ.get(
    "FLOWSERVE_TEST_PG", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS_URL = os.environ.get("FLOWSERVE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def database_dsn(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
async def pg_database() -> AsyncIterator[str]:
    """DSN of this test session's own database, migrated; dropped when the session ends."""
    name = f"flowserve_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = database_dsn(name)
        store = await PostgresFlowStore.open(dsn)
        await store.close()
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def redis_session_prefix() -> AsyncIterator[str]:
    """This test session's Redis key prefix; its keys are deleted at the end (SCAN + DEL)."""
    prefix = f"flowserve_test_{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)
    finally:
        await client.aclose()


_prefix_counter = itertools.count()


@pytest.fixture
def redis_prefix(redis_session_prefix: str) -> str:
    """A prefix of its own for one test (under the session's prefix)."""
    return f"{redis_session_prefix}{next(_prefix_counter)}:"


@pytest.fixture
async def clean_pg(pg_database: str) -> str:
    """The session database with every flow and non-default project removed."""
    conn = await asyncpg.connect(pg_database)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT IN ('schema_migrations', 'projects')"
        )
        if tables:
            names = ", ".join(f'"{t[0]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} CASCADE")
        await conn.execute("DELETE FROM projects WHERE id <> $1::uuid", DEFAULT_PROJECT_ID)
    finally:
        await conn.close()
    return pg_database


@pytest.fixture
def pg_settings(settings: Settings, clean_pg: str, redis_prefix: str) -> Settings:
    """``settings`` on the real PostgreSQL + Redis (clean flows, a fresh Redis prefix)."""
    return settings.replace(
        database_url=clean_pg, redis_url=TEST_REDIS_URL, redis_prefix=redis_prefix
    )


@pytest.fixture(params=["embedded", "postgres"])
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """``settings`` once per backend: embedded (SQLite + in-process) and Postgres + Redis."""
    if request.param == "embedded":
        return settings
    pg: Settings = request.getfixturevalue("pg_settings")
    return pg


@pytest.fixture
async def backend_client(backend_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """``client`` on each backend in turn."""
    async for c in _serve_in_lifespan(create_app(backend_settings)):
        yield c


@pytest.fixture
async def pg_client(pg_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """``client`` on the real PostgreSQL + Redis."""
    async for c in _serve_in_lifespan(create_app(pg_settings)):
        yield c
