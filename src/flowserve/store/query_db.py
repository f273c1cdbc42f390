"""The SQL Database component's database: PostgreSQL (asyncpg) or a SQLite file.

Only the operator chooses it (``FLOWSERVE_SQL_DATABASE_URL``). Every query runs
alone in its own transaction: PostgreSQL ``BEGIN READ ONLY`` with a local
``statement_timeout``; SQLite opened ``mode=ro`` with ``PRAGMA query_only``
and a progress handler that interrupts it at the deadline. Writes need
``FLOWSERVE_SQL_ALLOW_WRITES``. At most ``max_rows`` rows are read. One
statement per query: asyncpg's prepared statements and sqlite3's ``execute``
both refuse several. A database role with only the rights the flows need is
still the operator's best guard; this module does not replace it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import msgspec

from flowserve.errors import Invalid, QueryFailed, Unavailable
from flowserve.store.base import QueryDatabase, QueryResult

ALLOW_WRITES = "FLOWSERVE_SQL_ALLOW_WRITES"
TIMEOUT = "FLOWSERVE_SQL_TIMEOUT"
_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg")


def open_query_database(
    url: str, *, allow_writes: bool, timeout: float, max_rows: int
) -> QueryDatabase:
    """A handle on the database at ``url``; nothing connects until the first query."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        dsn = url.replace(scheme + "://", "postgresql://", 1) if "+" in scheme else url
        return PostgresQueryDatabase(dsn, allow_writes, timeout, max_rows)
    if scheme == "sqlite":
        return SqliteQueryDatabase(_sqlite_path(url), allow_writes, timeout, max_rows)
    raise Invalid(
        f"FLOWSERVE_SQL_DATABASE_URL must be a postgresql:// or sqlite:/// URL, not '{scheme}:'"
    )


def _sqlite_path(url: str) -> str:
    # SQLAlchemy's form, which Langflow users know: sqlite:///relative.db, sqlite:////abs.db
    path = unquote(url.split("://", 1)[1])
    path = path[1:] if path.startswith("/") else path
    if not path or path == ":memory:":
        raise Invalid("FLOWSERVE_SQL_DATABASE_URL must name a SQLite file, e.g. sqlite:///data.db")
    return path


def _cell(value: Any) -> Any:
    """A database value as JSON can carry it (numbers, text, ISO dates, ...)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes | memoryview):
        return f"<{len(bytes(value))} bytes>"
    try:
        return msgspec.to_builtins(value)
    except TypeError:
        return str(value)


def _read_only_hint(message: str) -> str:
    return (
        f"{message} (the database is read-only here; an operator can allow writes "
        f"with {ALLOW_WRITES})"
    )


class PostgresQueryDatabase:
    def __init__(self, dsn: str, allow_writes: bool, timeout: float, max_rows: int) -> None:
        self._dsn = dsn
        self._allow_writes = allow_writes
        self._timeout = timeout
        self._max_rows = max_rows
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _connections(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=0,
                        max_size=4,
                        timeout=5.0,
                        command_timeout=self._timeout + 5.0,
                    )
                except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                    raise _unavailable(exc) from exc
            return self._pool

    async def query(self, sql: str) -> QueryResult:
        pool = await self._connections()
        try:
            async with (
                pool.acquire(timeout=self._timeout) as conn,
                conn.transaction(readonly=not self._allow_writes),
            ):
                await conn.execute(f"SET LOCAL statement_timeout = {int(self._timeout * 1000)}")
                statement = await conn.prepare(sql)
                columns = [a.name for a in statement.get_attributes()]
                if not columns:
                    await statement.fetch()
                    return QueryResult(columns=[], rows=[], status=statement.get_statusmsg() or "")
                cursor = await statement.cursor()
                records = await cursor.fetch(self._max_rows + 1)
        except asyncpg.ReadOnlySQLTransactionError as exc:
            raise QueryFailed(_read_only_hint(f"the query failed: {exc}")) from exc
        except asyncpg.QueryCanceledError as exc:
            raise QueryFailed(
                f"the query ran longer than {self._timeout:g} s ({TIMEOUT}) and was cancelled"
            ) from exc
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError):
                raise _unavailable(exc) from exc
            raise QueryFailed(f"the query failed: {exc}") from exc
        except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            raise _unavailable(exc) from exc
        rows = [[_cell(v) for v in record.values()] for record in records[: self._max_rows]]
        return QueryResult(
            columns=columns, rows=rows, truncated=len(records) > self._max_rows, status="SELECT"
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def _unavailable(exc: BaseException) -> Unavailable:
    reason = str(exc) or type(exc).__name__
    return Unavailable(f"the SQL database is unavailable: {reason}", headers={"Retry-After": "1"})


class SqliteQueryDatabase:
    def __init__(self, path: str, allow_writes: bool, timeout: float, max_rows: int) -> None:
        self._path = path
        self._allow_writes = allow_writes
        self._timeout = timeout
        self._max_rows = max_rows

    async def query(self, sql: str) -> QueryResult:
        return await asyncio.to_thread(self._query, sql)

    def _query(self, sql: str) -> QueryResult:
        mode = "rw" if self._allow_writes else "ro"
        deadline = time.monotonic() + self._timeout
        try:
            conn = sqlite3.connect(f"file:{self._path}?mode={mode}", uri=True, timeout=5.0)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        try:
            if not self._allow_writes:
                conn.execute("PRAGMA query_only = ON")
            # Called every 1000 VM steps: a non-zero answer interrupts the statement.
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            cursor = conn.execute(sql)
            columns = [d[0] for d in cursor.description or ()]
            records = cursor.fetchmany(self._max_rows + 1) if columns else []
            status = "" if columns else f"{cursor.rowcount} rows changed"
            conn.commit()
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if message == "interrupted":
                raise QueryFailed(
                    f"the query ran longer than {self._timeout:g} s ({TIMEOUT}) and was cancelled"
                ) from exc
            if "readonly" in message or "read-only" in message:
                raise QueryFailed(_read_only_hint(f"the query failed: {message}")) from exc
            raise QueryFailed(f"the query failed: {message}") from exc
        except (sqlite3.Error, sqlite3.Warning) as exc:
            raise QueryFailed(f"the query failed: {exc}") from exc
        finally:
            conn.close()
        rows = [[_cell(v) for v in record] for record in records[: self._max_rows]]
        return QueryResult(
            columns=columns,
            rows=rows,
            truncated=len(records) > self._max_rows,
            status=status or "SELECT",
        )

    async def close(self) -> None:
        return None
