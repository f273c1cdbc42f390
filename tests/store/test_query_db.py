"""The SQL Database component's database, one contract for PostgreSQL and SQLite."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from flowserve.errors import Invalid, QueryFailed, Unavailable
from flowserve.store.base import QueryDatabase
from flowserve.store.query_db import open_query_database

Opener = Callable[..., QueryDatabase]
SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c",
    "postgres": "SELECT pg_sleep(30)",
}


@pytest.fixture(params=["sqlite", "postgres"])
def kind_and_dsn(request: pytest.FixtureRequest) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", ""
    return "postgres", request.getfixturevalue("pg_database")


@pytest.fixture
async def backend(
    kind_and_dsn: tuple[str, str], tmp_path: Path
) -> AsyncIterator[tuple[str, Opener]]:
    """(kind, open(allow_writes=..., timeout=..., max_rows=...)) over a database holding
    ``plans(name, price)`` with three rows."""
    rows = [("free", 0), ("pro", 20), ("team", 50)]
    kind, dsn = kind_and_dsn
    if kind == "sqlite":
        path = tmp_path / "pricing.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE plans (name TEXT, price INTEGER)")
            conn.executemany("INSERT INTO plans VALUES (?, ?)", rows)
        url = f"sqlite:///{path}"
        cleanup = None
    else:
        schema = f"sqltest_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(dsn)
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"CREATE TABLE {schema}.plans (name text, price integer)")
        await conn.executemany(f"INSERT INTO {schema}.plans VALUES ($1, $2)", rows)  # noqa: S608
        await conn.close()
        url = f"{dsn}?options=-csearch_path%3D{schema}"
        cleanup = (dsn, schema)
    opened: list[QueryDatabase] = []

    def make(
        *, allow_writes: bool = False, timeout: float = 5.0, max_rows: int = 100
    ) -> QueryDatabase:
        database = open_query_database(
            url, allow_writes=allow_writes, timeout=timeout, max_rows=max_rows
        )
        opened.append(database)
        return database

    yield kind, make
    for database in opened:
        await database.close()
    if cleanup is not None:
        conn = await asyncpg.connect(cleanup[0])
        await conn.execute(f"DROP SCHEMA {cleanup[1]} CASCADE")
        await conn.close()


async def test_a_select_returns_columns_and_rows(backend: tuple[str, Opener]) -> None:
    _, make = backend
    result = await make().query("SELECT name, price FROM plans ORDER BY price")
    assert result.columns == ["name", "price"]
    assert result.rows == [["free", 0], ["pro", 20], ["team", 50]]
    assert not result.truncated


async def test_writes_are_refused_unless_the_operator_allows_them(
    backend: tuple[str, Opener],
) -> None:
    _, make = backend
    with pytest.raises(QueryFailed) as caught:
        await make().query("INSERT INTO plans VALUES ('hacked', 1)")
    assert caught.value.status == 422
    assert "FLOWSERVE_SQL_ALLOW_WRITES" in caught.value.detail
    with pytest.raises(QueryFailed):
        await make().query("DROP TABLE plans")
    writable = make(allow_writes=True)
    changed = await writable.query("INSERT INTO plans VALUES ('ent', 99)")
    assert changed.columns == []
    assert changed.status
    count = await make().query("SELECT count(*) AS n FROM plans")
    assert count.rows == [[4]]


async def test_rows_beyond_the_cap_are_cut_and_flagged(backend: tuple[str, Opener]) -> None:
    _, make = backend
    result = await make(max_rows=2).query("SELECT name FROM plans ORDER BY price")
    assert result.rows == [["free"], ["pro"]]
    assert result.truncated


async def test_a_query_running_past_the_timeout_is_cancelled(backend: tuple[str, Opener]) -> None:
    kind, make = backend
    with pytest.raises(QueryFailed, match="FLOWSERVE_SQL_TIMEOUT"):
        await make(timeout=0.3).query(SLOW[kind])


async def test_bad_sql_and_several_statements_are_query_errors(
    backend: tuple[str, Opener],
) -> None:
    _, make = backend
    with pytest.raises(QueryFailed, match="the query failed"):
        await make().query("SELEC nonsense")
    with pytest.raises(QueryFailed):
        await make(allow_writes=True).query("SELECT 1; DELETE FROM plans")
    assert (await make().query("SELECT count(*) FROM plans")).rows == [[3]]


async def test_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    missing = open_query_database(
        f"sqlite:///{tmp_path}/nope.db", allow_writes=False, timeout=1, max_rows=10
    )
    with pytest.raises(Unavailable):
        await missing.query("SELECT 1")
    closed_port = open_query_database(
        "postgresql://postgres@127.0.0.1:1/x", allow_writes=False, timeout=1, max_rows=10
    )
    with pytest.raises(Unavailable, match="SQL database is unavailable"):
        await closed_port.query("SELECT 1")
    await closed_port.close()


def test_only_postgres_and_sqlite_urls_are_accepted() -> None:
    with pytest.raises(Invalid, match="postgresql:// or sqlite:///"):
        open_query_database("mysql://x/y", allow_writes=False, timeout=1, max_rows=1)
    with pytest.raises(Invalid, match="SQLite file"):
        open_query_database("sqlite:///:memory:", allow_writes=False, timeout=1, max_rows=1)
