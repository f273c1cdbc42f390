"""SQLite backend: the embedded default flow store, one file at ``settings.sqlite_path``.

stdlib ``sqlite3`` on one dedicated thread that owns the connection, so the
event loop never blocks and statements never interleave. WAL journal so
readers in other processes (``flowserve import`` while serving) do not wait
for writers. ``:memory:`` gives a private, throwaway database (``flowserve run``).
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from flowserve.errors import Conflict, EndpointNameTaken, FlowserveError, Invalid, Unavailable
from flowserve.store.base import (
    FlowFilter,
    FlowRecord,
    FlowRevision,
    ProjectRecord,
    canonical_uuid,
)
from flowserve.store.migrations import SCHEMA_TABLE, Migration, pending

T = TypeVar("T")

_FLOW_COLUMNS = (
    "id, name, description, endpoint_name, data, access_type, webhook, mcp_enabled,"
    " session_ttl, folder_id, version, created_at, updated_at"
)
_ORDER = "lower(name), name, id"
_PROJECT_COLUMNS = "id, name, description, parent_id, created_at, updated_at"


def _now() -> str:
    return _stamp(datetime.now(UTC))


def _stamp(moment: datetime) -> str:
    """A time as stored: ISO 8601 in UTC with microseconds (compared as text)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _flow(row: sqlite3.Row) -> FlowRecord:
    return FlowRecord(
        id=row["id"],
        name=row["name"],
        data=msgspec.json.decode(row["data"]),
        description=row["description"],
        endpoint_name=row["endpoint_name"],
        access_type=row["access_type"],
        webhook=bool(row["webhook"]),
        mcp_enabled=bool(row["mcp_enabled"]),
        folder_id=row["folder_id"],
        session_ttl=row["session_ttl"],
        version=row["version"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
    )


def _project(row: sqlite3.Row) -> ProjectRecord:
    return ProjectRecord(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        parent_id=row["parent_id"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
    )


def translate(exc: sqlite3.Error) -> FlowserveError:
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if "flows.endpoint_name" in message:
            return EndpointNameTaken("Endpoint name must be unique: another flow uses it")
        if "projects.name" in message:
            return Conflict("Project name must be unique")
        if "UNIQUE" in message:
            return Conflict("A record with this id already exists")
        if "FOREIGN KEY" in message:
            return Invalid("folder_id names no existing project")
        return Invalid(f"Rejected by the database: {message}")
    if "no such table" in message or "no such column" in message:
        return Unavailable("The database schema is missing or outdated: run `flowserve migrate`")
    return Unavailable(f"SQLite is unavailable: {message}")


def _where(where: FlowFilter | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if where is not None:
        for column, value in (
            ("name", where.name),
            ("endpoint_name", where.endpoint_name),
            ("folder_id", where.folder_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if where.ids is not None:
            wanted = _uuids(list(where.ids))
            clauses.append(f"id IN ({_marks(wanted)})")
            args.extend(wanted)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _uuids(ids: builtins.list[str]) -> builtins.list[str]:
    return [u for u in (canonical_uuid(i) for i in ids) if u is not None]


def _marks(values: builtins.list[str]) -> str:
    return ",".join("?" * len(values))


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    if path != ":memory:":
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _switch_to_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    # Switching the journal mode needs a moment alone with the file, and SQLite answers
    # "database is locked" at once (no busy timeout) when another connection opening the
    # same file is doing the same: retry briefly instead of failing the start.
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02)


def migrate_connection(conn: sqlite3.Connection) -> list[Migration]:
    """Apply pending migrations, each in its own ``BEGIN IMMEDIATE`` transaction."""
    conn.execute(SCHEMA_TABLE["sqlite"])
    applied_now: list[Migration] = []
    while True:
        conn.execute("BEGIN IMMEDIATE")  # serialises concurrent runners across processes
        try:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            todo = pending("sqlite", done)
            if not todo:
                conn.execute("COMMIT")
                return applied_now
            migration = todo[0]
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                (migration.version, migration.name),
            )
            conn.execute("COMMIT")
            applied_now.append(migration)
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (``executescript`` would commit on its own)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current)
            current = ""
    if current.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in current.splitlines()
    ):
        statements.append(current)
    return statements


class SqliteFlowStore:
    """Flows and projects in a SQLite file (schema: ``migrations/sqlite``)."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor

    @classmethod
    async def open(cls, path: str, *, run_migrations: bool = True) -> SqliteFlowStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, connect, path)
            if run_migrations:
                await loop.run_in_executor(executor, migrate_connection, conn)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise translate(exc) from exc
        return cls(conn, executor)

    async def migrate(self) -> builtins.list[str]:
        """Apply pending migrations; the names of those applied now."""
        applied = await self.call(migrate_connection)
        return [f"{m.version:04d}_{m.name}" for m in applied]

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` on the store's thread (for stores sharing the file)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work, self._conn)
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        except RuntimeError as exc:  # executor shut down: the store is closed
            raise Unavailable("The flow store is closed") from exc

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Like ``call``, inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self.call(run)

    async def get(self, ref: str) -> FlowRecord | None:
        flow_id = canonical_uuid(ref)
        column, arg = ("id", flow_id) if flow_id is not None else ("endpoint_name", ref)
        sql = f"SELECT {_FLOW_COLUMNS} FROM flows WHERE {column} = ?"
        row = await self.call(lambda c: c.execute(sql, (arg,)).fetchone())
        return _flow(row) if row is not None else None

    async def get_many(self, ids: builtins.list[str]) -> builtins.list[FlowRecord]:
        wanted = _uuids(ids)
        sql = f"SELECT {_FLOW_COLUMNS} FROM flows WHERE id IN ({_marks(wanted)}) ORDER BY {_ORDER}"
        rows = await self.call(lambda c: c.execute(sql, wanted).fetchall())
        return [_flow(r) for r in rows]

    async def list(
        self, *, limit: int = 50, offset: int = 0, where: FlowFilter | None = None
    ) -> builtins.list[FlowRecord]:
        clause, args = _where(where)
        sql = f"SELECT {_FLOW_COLUMNS} FROM flows{clause} ORDER BY {_ORDER} LIMIT ? OFFSET ?"
        rows = await self.call(lambda c: c.execute(sql, [*args, limit, offset]).fetchall())
        return [_flow(r) for r in rows]

    async def count(self, where: FlowFilter | None = None) -> int:
        clause, args = _where(where)
        sql = f"SELECT count(*) FROM flows{clause}"
        return int(await self.call(lambda c: c.execute(sql, args).fetchone()[0]))

    async def create(self, record: FlowRecord) -> FlowRecord:
        def work(conn: sqlite3.Connection) -> FlowRecord:
            now = _now()
            conn.execute(
                f"INSERT INTO flows ({_FLOW_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,1,?,?)",
                (*_values(record), now, now),
            )
            return _flow(
                conn.execute(
                    f"SELECT {_FLOW_COLUMNS} FROM flows WHERE id = ?", (record.id,)
                ).fetchone()
            )

        return await self.transaction(work)

    async def upsert(self, record: FlowRecord) -> tuple[FlowRecord, bool]:
        return await self.transaction(lambda conn: _upsert(conn, record))

    async def upsert_many(
        self, records: builtins.list[FlowRecord]
    ) -> builtins.list[tuple[FlowRecord, bool]]:
        return await self.transaction(lambda conn: [_upsert(conn, r) for r in records])

    async def update(
        self, record: FlowRecord, *, expected: FlowRevision | None
    ) -> FlowRecord | None:
        return await self.transaction(lambda conn: _update(conn, record, expected))

    async def delete(self, flow_id: str) -> bool:
        return bool(await self.delete_many([flow_id]))

    async def delete_many(self, ids: builtins.list[str]) -> builtins.list[str]:
        wanted = _uuids(ids)

        def work(conn: sqlite3.Connection) -> builtins.list[str]:
            sql = f"DELETE FROM flows WHERE id IN ({_marks(wanted)}) RETURNING id"
            return [r[0] for r in conn.execute(sql, wanted).fetchall()]

        return await self.transaction(work)

    async def versions(self, ids: builtins.list[str]) -> dict[str, int]:
        wanted = _uuids(ids)
        sql = f"SELECT id, version FROM flows WHERE id IN ({_marks(wanted)})"
        rows = await self.call(lambda c: c.execute(sql, wanted).fetchall())
        return {r[0]: r[1] for r in rows}

    async def list_projects(self) -> builtins.list[ProjectRecord]:
        sql = f"SELECT {_PROJECT_COLUMNS} FROM projects ORDER BY {_ORDER}"
        return [_project(r) for r in await self.call(lambda c: c.execute(sql).fetchall())]

    async def get_project(self, project_id: str) -> ProjectRecord | None:
        pid = canonical_uuid(project_id)
        sql = f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE id = ?"
        row = await self.call(lambda c: c.execute(sql, (pid,)).fetchone())
        return _project(row) if row is not None else None

    async def create_project(self, record: ProjectRecord) -> ProjectRecord:
        def work(conn: sqlite3.Connection) -> ProjectRecord:
            now = _now()
            conn.execute(
                f"INSERT INTO projects ({_PROJECT_COLUMNS}) VALUES (?,?,?,?,?,?)",
                (record.id, record.name, record.description, record.parent_id, now, now),
            )
            sql = f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE id = ?"
            return _project(conn.execute(sql, (record.id,)).fetchone())

        return await self.transaction(work)

    async def update_project(self, record: ProjectRecord) -> ProjectRecord | None:
        def work(conn: sqlite3.Connection) -> ProjectRecord | None:
            conn.execute(
                "UPDATE projects SET name = ?, description = ?, parent_id = ?, updated_at = ?"
                " WHERE id = ?",
                (record.name, record.description, record.parent_id, _now(), record.id),
            )
            sql = f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE id = ?"
            row = conn.execute(sql, (record.id,)).fetchone()
            return _project(row) if row is not None else None

        return await self.transaction(work)

    async def delete_project(self, project_id: str) -> builtins.list[str] | None:
        pid = canonical_uuid(project_id)

        def work(conn: sqlite3.Connection) -> builtins.list[str] | None:
            if conn.execute("SELECT 1 FROM projects WHERE id = ?", (pid,)).fetchone() is None:
                return None
            rows = conn.execute("DELETE FROM flows WHERE folder_id = ? RETURNING id", (pid,))
            deleted = [r[0] for r in rows.fetchall()]
            conn.execute("DELETE FROM projects WHERE id = ?", (pid,))
            return deleted

        return await self.transaction(work)

    async def ping(self) -> None:
        # Touches the flows table, so a missing schema shows up in health too.
        await self.call(lambda c: c.execute("SELECT 1 FROM flows LIMIT 1").fetchone())

    async def close(self) -> None:
        def shut(conn: sqlite3.Connection) -> None:
            conn.close()

        try:
            await self.call(shut)
        finally:
            self._executor.shutdown(wait=True)


def _upsert(conn: sqlite3.Connection, record: FlowRecord) -> tuple[FlowRecord, bool]:
    now = _now()
    existed = conn.execute("SELECT 1 FROM flows WHERE id = ?", (record.id,)).fetchone()
    conn.execute(
        f"INSERT INTO flows ({_FLOW_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,1,?,?)"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
        " description = excluded.description, endpoint_name = excluded.endpoint_name,"
        " data = excluded.data, access_type = excluded.access_type,"
        " webhook = excluded.webhook, mcp_enabled = excluded.mcp_enabled,"
        " session_ttl = excluded.session_ttl, folder_id = excluded.folder_id,"
        " version = flows.version + 1, updated_at = excluded.updated_at",
        (*_values(record), now, now),
    )
    row = conn.execute(f"SELECT {_FLOW_COLUMNS} FROM flows WHERE id = ?", (record.id,)).fetchone()
    return _flow(row), existed is None


def _update(
    conn: sqlite3.Connection, record: FlowRecord, expected: FlowRevision | None
) -> FlowRecord | None:
    sql = (
        "UPDATE flows SET name = ?, description = ?, endpoint_name = ?, data = ?,"
        " access_type = ?, webhook = ?, mcp_enabled = ?, session_ttl = ?, folder_id = ?,"
        " version = version + 1, updated_at = ? WHERE id = ?"
    )
    args: list[Any] = [*_values(record)[1:], _now(), record.id]
    if expected is not None:
        # Compare-and-set in the UPDATE itself (the revision's time as stored text).
        sql += " AND version = ? AND updated_at = ?"
        args += [expected.version, _stamp(expected.updated_at)]
    if conn.execute(sql, args).rowcount != 1:
        return None
    row = conn.execute(f"SELECT {_FLOW_COLUMNS} FROM flows WHERE id = ?", (record.id,)).fetchone()
    return _flow(row)


def _values(record: FlowRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.name,
        record.description,
        record.endpoint_name,
        msgspec.json.encode(record.data).decode(),
        record.access_type,
        int(record.webhook),
        int(record.mcp_enabled),
        record.session_ttl,
        record.folder_id,
    )
