"""PostgreSQL backend: the asyncpg pool, migrations, and ``PostgresFlowStore``.

The pool registers a msgspec JSON codec for ``jsonb`` in each connection's
``init``, so flow documents go in and out as Python values without a detour
through ``json``. asyncpg's exceptions are translated here: connection
problems become ``Unavailable`` (503), uniqueness clashes ``Conflict`` /
``EndpointNameTaken`` (409). The pool replaces broken connections by itself,
so the service recovers when the database comes back. It holds at most
``FLOWSERVE_DATABASE_POOL_SIZE`` connections; a caller waits at most
``FLOWSERVE_DATABASE_POOL_TIMEOUT`` seconds for a free one, then gets
``PoolExhausted`` (503, Retry-After) rather than queueing without end.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import msgspec

from flowserve.errors import (
    Conflict,
    EndpointNameTaken,
    FlowserveError,
    Invalid,
    PoolExhausted,
    Unavailable,
)
from flowserve.store.base import (
    FlowFilter,
    FlowRecord,
    FlowRevision,
    ProjectRecord,
    canonical_uuid,
)
from flowserve.store.migrations import (
    ADVISORY_LOCK_KEY,
    SCHEMA_TABLE,
    Migration,
    MigrationError,
    pending,
)

T = TypeVar("T")

Pool = asyncpg.Pool
if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    _PoolBase = asyncpg.Pool[asyncpg.Record]
    _AcquireBase = asyncpg.pool.PoolAcquireContext[asyncpg.Record]
else:
    Connection = asyncpg.pool.PoolConnectionProxy
    _PoolBase = asyncpg.Pool
    _AcquireBase = asyncpg.pool.PoolAcquireContext

# The default of FLOWSERVE_DATABASE_POOL_TIMEOUT.
DEFAULT_POOL_TIMEOUT = 10.0

_encoder = msgspec.json.Encoder()


def _encode_json(value: Any) -> str:
    return _encoder.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("jsonb", "json"):
        await conn.set_type_codec(
            name, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog"
        )


_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


def unavailable(exc: BaseException) -> Unavailable:
    reason = str(exc) or type(exc).__name__
    return Unavailable(f"PostgreSQL is unavailable: {reason}", headers={"Retry-After": "1"})


def translate(exc: BaseException) -> FlowserveError:
    """One asyncpg (or socket) exception as the flowserve error callers should see."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        constraint = exc.constraint_name or ""
        if "endpoint_name" in constraint:
            return EndpointNameTaken("Endpoint name must be unique: another flow uses it")
        if constraint.startswith("projects_name"):
            return Conflict("Project name must be unique")
        return Conflict("A record with this id already exists")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return Invalid("folder_id names no existing project")
    if isinstance(exc, asyncpg.CheckViolationError):
        return Invalid(f"Rejected by the database: {exc.constraint_name}")
    if isinstance(
        exc, asyncpg.CharacterNotInRepertoireError | asyncpg.UntranslatableCharacterError
    ):
        # PostgreSQL text and jsonb cannot hold U+0000: a client's input, not our failure.
        return Invalid("Text containing a NUL character (\\u0000) cannot be stored")
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError):
        return Unavailable("The database schema is missing or outdated: run `flowserve migrate`")
    if isinstance(exc, _CONNECTION_ERRORS):
        return unavailable(exc)
    if isinstance(exc, asyncpg.PostgresError):
        return FlowserveError(f"Database error ({exc.sqlstate})")
    raise exc


async def fetch(
    pool: Pool,
    sql: str,
    *args: Any,
    errors: Callable[[BaseException], FlowserveError] = translate,
) -> builtins.list[asyncpg.Record]:
    """The rows of one query on a pooled connection; asyncpg's errors leave as ``errors``
    makes them (``Unavailable``, ``Conflict`` ...)."""
    try:
        async with pool.acquire() as conn:
            rows: builtins.list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
    except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
        raise errors(exc) from exc


class BoundedPool(_PoolBase):
    """asyncpg's pool, where waiting for a free connection ends after ``acquire_timeout``
    seconds in ``PoolExhausted``. (asyncpg's own acquire timeout raises a bare
    TimeoutError, like a slow query's, and on Python 3.11 costs a task per acquire.)"""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> _BoundedAcquire:
        return _BoundedAcquire(self, timeout)

    def exhausted(self) -> PoolExhausted:
        return PoolExhausted("PostgreSQL connection", "database_pool_size", self.get_max_size())


class _BoundedAcquire(_AcquireBase):
    __slots__ = ()

    async def __aenter__(self) -> Connection:
        if self.timeout is not None:  # the caller's own bound
            return await super().__aenter__()
        assert isinstance(self.pool, BoundedPool)
        try:
            async with asyncio.timeout(self.pool.acquire_timeout) as deadline:
                return await super().__aenter__()
        except TimeoutError:
            if not deadline.expired():
                raise  # connecting timed out: the database, not the pool
            raise self.pool.exhausted() from None

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._acquired().__await__()

    async def _acquired(self) -> Connection:
        # ``conn = await pool.acquire()``: the caller releases it (``pool.release(conn)``).
        connection = await self.__aenter__()
        self.done, self.connection = True, None
        return connection


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 5.0,
    acquire_timeout: float = DEFAULT_POOL_TIMEOUT,
) -> Pool:
    """Open the pool; ``Unavailable`` when PostgreSQL cannot be reached."""
    # asyncpg.create_pool's arguments, to make our subclass (it takes no pool class).
    pool = BoundedPool(
        dsn,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        timeout=connect_timeout,
        command_timeout=30.0,
        init=_init_connection,
    )
    try:
        await pool
    except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
        raise unavailable(exc) from exc
    return pool


async def migrate(pool: Pool) -> list[Migration]:
    """Apply pending migrations under an advisory lock; returns what was applied."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
            await conn.execute(SCHEMA_TABLE["postgres"])
            rows = await conn.fetch("SELECT version FROM schema_migrations")
            todo = pending("postgres", {r["version"] for r in rows})
            for migration in todo:
                async with conn.transaction():
                    try:
                        await conn.execute(migration.sql)
                    except asyncpg.PostgresError as exc:
                        missing = _missing_extension(migration, exc)
                        if missing is None:
                            raise
                        raise missing from exc
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
    except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
        raise translate(exc) from exc
    return todo


def _missing_extension(migration: Migration, exc: asyncpg.PostgresError) -> MigrationError | None:
    """A migration that needs pgvector on a server without it: say what to install."""
    message = str(exc)
    if 'extension "vector"' not in message:
        return None
    return MigrationError(
        f"Migration {migration.version:04d}_{migration.name} needs the PostgreSQL extension "
        f"'vector' (pgvector), which this database cannot create: {message}. Install it on "
        "the database server (Debian/Ubuntu: postgresql-<major>-pgvector; it ships with most "
        "hosted PostgreSQL services), or have a superuser run CREATE EXTENSION vector in "
        "this database, then start flowserve again."
    )


_FLOW_COLUMNS = (
    "id::text AS id, name, description, endpoint_name, data, access_type, webhook, mcp_enabled,"
    " session_ttl, folder_id::text AS folder_id, version, created_at, updated_at"
)
_ORDER = 'lower(name) COLLATE "C", name COLLATE "C", id'
_UPSERT = (
    "INSERT INTO flows (id, name, description, endpoint_name, data, access_type, webhook,"
    " mcp_enabled, session_ttl, folder_id)"
    " VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10::uuid)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
    " description = EXCLUDED.description, endpoint_name = EXCLUDED.endpoint_name,"
    " data = EXCLUDED.data, access_type = EXCLUDED.access_type,"
    " webhook = EXCLUDED.webhook, mcp_enabled = EXCLUDED.mcp_enabled,"
    " session_ttl = EXCLUDED.session_ttl, folder_id = EXCLUDED.folder_id,"
    " version = flows.version + 1, updated_at = now()"
    f" RETURNING {_FLOW_COLUMNS}, (xmax = 0) AS inserted"
)
_UPDATE = (
    "UPDATE flows SET name = $2, description = $3, endpoint_name = $4, data = $5,"
    " access_type = $6, webhook = $7, mcp_enabled = $8, session_ttl = $9,"
    " folder_id = $10::uuid, version = version + 1, updated_at = now()"
    " WHERE id = $1::uuid"
)
_PROJECT_COLUMNS = (
    "id::text AS id, name, description, parent_id::text AS parent_id, created_at, updated_at"
)


def _flow(row: asyncpg.Record) -> FlowRecord:
    return FlowRecord(
        id=row["id"],
        name=row["name"],
        data=row["data"],
        description=row["description"],
        endpoint_name=row["endpoint_name"],
        access_type=row["access_type"],
        webhook=row["webhook"],
        mcp_enabled=row["mcp_enabled"],
        folder_id=row["folder_id"],
        session_ttl=row["session_ttl"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _project(row: asyncpg.Record) -> ProjectRecord:
    return ProjectRecord(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        parent_id=row["parent_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _where(where: FlowFilter | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if where is not None:
        for column, value in (
            ("name", where.name),
            ("endpoint_name", where.endpoint_name),
            ("folder_id::text", where.folder_id),
        ):
            if value is not None and "\x00" in value:
                clauses.append("false")  # no stored text holds a NUL (PostgreSQL cannot)
            elif value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        if where.ids is not None:
            args.append(_uuids(list(where.ids)))
            clauses.append(f"id = ANY(${len(args)}::uuid[])")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _uuids(ids: builtins.list[str]) -> builtins.list[str]:
    return [u for u in (canonical_uuid(i) for i in ids) if u is not None]


class PostgresFlowStore:
    """Flows and projects in PostgreSQL (schema: ``migrations/postgres``)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        run_migrations: bool = True,
        pool_size: int = 10,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
    ) -> PostgresFlowStore:
        pool = await create_pool(dsn, max_size=pool_size, acquire_timeout=pool_timeout)
        try:
            if run_migrations:
                await migrate(pool)
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def migrate(self) -> builtins.list[str]:
        """Apply pending migrations; the names of those applied now."""
        return [f"{m.version:04d}_{m.name}" for m in await migrate(self._pool)]

    @property
    def pool(self) -> Pool:
        """The pool, for other stores sharing the database (API keys, jobs)."""
        return self._pool

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
            raise translate(exc) from exc

    async def run(
        self, work: Callable[[Connection], Coroutine[Any, Any, T]], *, tx: bool = False
    ) -> T:
        """``await work(connection)`` on a pooled connection (in a transaction when ``tx``),
        asyncpg errors translated. For other stores sharing the database (API keys, jobs)."""
        async with self._conn() as conn:
            if not tx:
                return await work(conn)
            async with conn.transaction():
                return await work(conn)

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record:
        """One row a statement always returns (INSERT ... RETURNING)."""
        row = await self.run(lambda c: c.fetchrow(sql, *args))
        if row is None:
            raise FlowserveError("The database returned no row")
        return row

    async def get(self, ref: str) -> FlowRecord | None:
        flow_id = canonical_uuid(ref)
        if flow_id is not None:
            sql = f"SELECT {_FLOW_COLUMNS} FROM flows WHERE id = $1::uuid"
            arg = flow_id
        elif "\x00" in ref:
            return None  # no endpoint name holds a NUL (and PostgreSQL cannot compare one)
        else:
            sql = f"SELECT {_FLOW_COLUMNS} FROM flows WHERE endpoint_name = $1"
            arg = ref
        row = await self.run(lambda c: c.fetchrow(sql, arg))
        return _flow(row) if row is not None else None

    async def get_many(self, ids: builtins.list[str]) -> builtins.list[FlowRecord]:
        sql = f"SELECT {_FLOW_COLUMNS} FROM flows WHERE id = ANY($1::uuid[]) ORDER BY {_ORDER}"
        rows = await self.run(lambda c: c.fetch(sql, _uuids(ids)))
        return [_flow(r) for r in rows]

    async def list(
        self, *, limit: int = 50, offset: int = 0, where: FlowFilter | None = None
    ) -> builtins.list[FlowRecord]:
        clause, args = _where(where)
        n = len(args)
        sql = (
            f"SELECT {_FLOW_COLUMNS} FROM flows{clause}"
            f" ORDER BY {_ORDER} LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        rows = await self.run(lambda c: c.fetch(sql, *args, limit, offset))
        return [_flow(r) for r in rows]

    async def count(self, where: FlowFilter | None = None) -> int:
        clause, args = _where(where)
        value = await self.run(lambda c: c.fetchval(f"SELECT count(*) FROM flows{clause}", *args))
        return int(value)

    async def create(self, record: FlowRecord) -> FlowRecord:
        sql = (
            "INSERT INTO flows (id, name, description, endpoint_name, data, access_type, webhook,"
            " mcp_enabled, session_ttl, folder_id)"
            " VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10::uuid)"
            f" RETURNING {_FLOW_COLUMNS}"
        )
        return _flow(await self._fetchrow(sql, *_values(record)))

    async def upsert(self, record: FlowRecord) -> tuple[FlowRecord, bool]:
        row = await self._fetchrow(_UPSERT, *_values(record))
        return _flow(row), bool(row["inserted"])

    async def upsert_many(
        self, records: builtins.list[FlowRecord]
    ) -> builtins.list[tuple[FlowRecord, bool]]:
        async def work(conn: Connection) -> builtins.list[tuple[FlowRecord, bool]]:
            done: builtins.list[tuple[FlowRecord, bool]] = []
            for record in records:
                row = await conn.fetchrow(_UPSERT, *_values(record))
                if row is None:
                    raise FlowserveError("The database returned no row")
                done.append((_flow(row), bool(row["inserted"])))
            return done

        return await self.run(work, tx=True)

    async def update(
        self, record: FlowRecord, *, expected: FlowRevision | None
    ) -> FlowRecord | None:
        args = list(_values(record))
        sql = _UPDATE
        if expected is not None:
            # Compare-and-set: the revision is checked by the UPDATE itself, so two
            # writers holding the same ETag cannot both succeed.
            sql += " AND version = $11 AND updated_at = $12"
            args += [expected.version, expected.updated_at]
        row = await self.run(lambda c: c.fetchrow(f"{sql} RETURNING {_FLOW_COLUMNS}", *args))
        return _flow(row) if row is not None else None

    async def delete(self, flow_id: str) -> bool:
        return bool(await self.delete_many([flow_id]))

    async def delete_many(self, ids: builtins.list[str]) -> builtins.list[str]:
        sql = "DELETE FROM flows WHERE id = ANY($1::uuid[]) RETURNING id::text"
        rows = await self.run(lambda c: c.fetch(sql, _uuids(ids)))
        return [r[0] for r in rows]

    async def versions(self, ids: builtins.list[str]) -> dict[str, int]:
        sql = "SELECT id::text, version FROM flows WHERE id = ANY($1::uuid[])"
        rows = await self.run(lambda c: c.fetch(sql, _uuids(ids)))
        return {r[0]: r[1] for r in rows}

    async def list_projects(self) -> builtins.list[ProjectRecord]:
        sql = f"SELECT {_PROJECT_COLUMNS} FROM projects ORDER BY {_ORDER}"
        return [_project(r) for r in await self.run(lambda c: c.fetch(sql))]

    async def get_project(self, project_id: str) -> ProjectRecord | None:
        pid = canonical_uuid(project_id)
        if pid is None:
            return None
        sql = f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE id = $1::uuid"
        row = await self.run(lambda c: c.fetchrow(sql, pid))
        return _project(row) if row is not None else None

    async def create_project(self, record: ProjectRecord) -> ProjectRecord:
        sql = (
            "INSERT INTO projects (id, name, description, parent_id)"
            f" VALUES ($1::uuid, $2, $3, $4::uuid) RETURNING {_PROJECT_COLUMNS}"
        )
        args = (record.id, record.name, record.description, record.parent_id)
        return _project(await self._fetchrow(sql, *args))

    async def update_project(self, record: ProjectRecord) -> ProjectRecord | None:
        sql = (
            "UPDATE projects SET name = $2, description = $3, parent_id = $4::uuid,"
            f" updated_at = now() WHERE id = $1::uuid RETURNING {_PROJECT_COLUMNS}"
        )
        args = (record.id, record.name, record.description, record.parent_id)
        row = await self.run(lambda c: c.fetchrow(sql, *args))
        return _project(row) if row is not None else None

    async def delete_project(self, project_id: str) -> builtins.list[str] | None:
        pid = canonical_uuid(project_id)
        if pid is None:
            return None

        async def work(conn: Connection) -> builtins.list[str] | None:
            rows = await conn.fetch(
                "DELETE FROM flows WHERE folder_id = $1::uuid RETURNING id::text", pid
            )
            gone = await conn.fetchval("DELETE FROM projects WHERE id = $1::uuid RETURNING 1", pid)
            return [r[0] for r in rows] if gone else None

        return await self.run(work, tx=True)

    async def ping(self) -> None:
        # Touches the flows table, so a missing schema shows up in health too.
        await self.run(lambda c: c.fetchval("SELECT 1 FROM flows LIMIT 1"))

    async def close(self) -> None:
        await self._pool.close()


def _values(record: FlowRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.name,
        record.description,
        record.endpoint_name,
        record.data,
        record.access_type,
        record.webhook,
        record.mcp_enabled,
        record.session_ttl,
        record.folder_id,
    )
