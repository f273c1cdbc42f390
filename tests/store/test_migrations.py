"""Migrations: applied once, recorded, safe when several instances start at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from flowserve.store.migrations import migrations
from flowserve.store.postgres import PostgresFlowStore
from flowserve.store.sqlite import SqliteFlowStore
from tests.conftest import PG_ADMIN_DSN, database_dsn


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    name = f"flowserve_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_dsn(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_every_backend_ships_the_same_migration_versions() -> None:
    postgres = [(m.version, m.name) for m in migrations("postgres")]
    sqlite = [(m.version, m.name) for m in migrations("sqlite")]
    assert postgres == sqlite
    assert postgres[0] == (1, "flows")


async def test_instances_starting_together_apply_migrations_once(fresh_database: str) -> None:
    stores = await asyncio.gather(*(PostgresFlowStore.open(fresh_database) for _ in range(4)))
    try:
        conn = await asyncpg.connect(fresh_database)
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        await conn.close()
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in migrations("postgres")
        ]
        assert await stores[0].migrate() == []
    finally:
        for store in stores:
            await store.close()


async def test_migrate_reports_what_it_applied(fresh_database: str, tmp_path: Path) -> None:
    pg = await PostgresFlowStore.open(fresh_database, run_migrations=False)
    sqlite = await SqliteFlowStore.open(str(tmp_path / "f.db"), run_migrations=False)
    try:
        shipped = [f"{m.version:04d}_{m.name}" for m in migrations("postgres")]
        assert shipped[0] == "0001_flows"
        assert await pg.migrate() == shipped
        assert await sqlite.migrate() == shipped
        assert await pg.migrate() == []
        assert await sqlite.migrate() == []
    finally:
        await pg.close()
        await sqlite.close()


async def test_sqlite_stores_opening_together_share_one_schema(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    stores = await asyncio.gather(*(SqliteFlowStore.open(path) for _ in range(3)))
    try:
        assert [p.name for p in await stores[2].list_projects()] == ["Starter Project"]
    finally:
        for store in stores:
            await store.close()
