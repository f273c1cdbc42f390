"""Store protocols: what the service layer needs from persistent state.

Flows and projects live in a ``FlowStore`` (PostgreSQL in production, a SQLite
file embedded); conversation messages in a ``MessageStore`` (Redis, or this
process). Every backend passes the same contract tests (``tests/store/``).
Backends translate their own exceptions at this boundary: a backend that
cannot be reached raises ``Unavailable``, a uniqueness clash ``Conflict`` or
``EndpointNameTaken``; callers never see asyncpg, sqlite3 or redis.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec

from flowserve.engine.types import Message

# The project every flow saved without a folder_id belongs to (created by migration 0001).
DEFAULT_PROJECT_ID = "00000000-0000-4000-8000-000000000001"
DEFAULT_PROJECT_NAME = "Starter Project"

ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def canonical_uuid(value: str) -> str | None:
    """``value`` as a lowercase hyphenated UUID, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


class FlowRecord(msgspec.Struct, kw_only=True):
    """A stored flow: its Langflow document plus the metadata we index."""

    id: str
    name: str
    data: dict[str, Any]
    description: str = ""
    endpoint_name: str | None = None
    access_type: str = "PRIVATE"
    webhook: bool = False
    mcp_enabled: bool = False
    folder_id: str | None = None
    session_ttl: int | None = None
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FlowRevision(msgspec.Struct, frozen=True):
    """One stored state of a flow: what an ETag names. The version alone would repeat
    when a flow is deleted and created again; the time of the write tells them apart."""

    version: int
    updated_at: datetime


class ProjectRecord(msgspec.Struct, kw_only=True):
    """A project (Langflow's folder): a named group of flows."""

    id: str
    name: str
    description: str = ""
    parent_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FlowFilter(msgspec.Struct, kw_only=True, frozen=True):
    """Exact-match filters of a flow listing; None means any."""

    name: str | None = None
    endpoint_name: str | None = None
    folder_id: str | None = None
    # Only flows with one of these ids (an empty tuple matches none): a restricted key's view.
    ids: tuple[str, ...] | None = None


class FlowStore(Protocol):
    async def get(self, ref: str) -> FlowRecord | None:
        """A flow by UUID or endpoint name."""
        ...

    async def get_many(self, ids: builtins.list[str]) -> builtins.list[FlowRecord]:
        """The flows among ``ids`` that exist (unknown and non-UUID ids are skipped)."""
        ...

    async def list(
        self, *, limit: int = 50, offset: int = 0, where: FlowFilter | None = None
    ) -> builtins.list[FlowRecord]:
        """Flows ordered by name then id."""
        ...

    async def count(self, where: FlowFilter | None = None) -> int: ...

    async def create(self, record: FlowRecord) -> FlowRecord:
        """Insert a new flow; ``Conflict`` when the id exists."""
        ...

    async def upsert(self, record: FlowRecord) -> tuple[FlowRecord, bool]:
        """Insert or replace by id (version + 1); returns the stored record and whether created."""
        ...

    async def upsert_many(
        self, records: builtins.list[FlowRecord]
    ) -> builtins.list[tuple[FlowRecord, bool]]:
        """``upsert`` each, in one transaction: all are written or none."""
        ...

    async def update(
        self, record: FlowRecord, *, expected: FlowRevision | None
    ) -> FlowRecord | None:
        """Replace an existing flow (version + 1) only while it is still at ``expected``
        (None: at any revision), checked by the write itself; None when no flow with this
        id is at that revision, and then nothing is written."""
        ...

    async def delete(self, flow_id: str) -> bool: ...

    async def delete_many(self, ids: builtins.list[str]) -> builtins.list[str]:
        """Delete in one transaction; returns the ids that existed."""
        ...

    async def versions(self, ids: builtins.list[str]) -> dict[str, int]:
        """Current version of each existing flow among ``ids`` (the cache's freshness check)."""
        ...

    async def list_projects(self) -> builtins.list[ProjectRecord]: ...

    async def get_project(self, project_id: str) -> ProjectRecord | None: ...

    async def create_project(self, record: ProjectRecord) -> ProjectRecord:
        """``Conflict`` when the name or id is taken."""
        ...

    async def update_project(self, record: ProjectRecord) -> ProjectRecord | None: ...

    async def delete_project(self, project_id: str) -> builtins.list[str] | None:
        """Delete a project and its flows; the deleted flow ids, or None if no such project."""
        ...

    async def migrate(self) -> builtins.list[str]:
        """Apply pending schema migrations; the names of those applied now."""
        ...

    async def ping(self) -> None:
        """Raise ``Unavailable`` when the backend cannot be reached."""
        ...

    async def close(self) -> None: ...


class MessageStore(Protocol):
    """Conversation messages per (flow, session), each session expiring after a sliding TTL.

    Every read or write of a session pushes its expiry ``ttl`` seconds ahead.
    """

    async def append(
        self, flow_id: str, session_id: str, messages: list[Message], ttl: int
    ) -> None: ...

    async def history(
        self,
        flow_id: str,
        session_id: str | None,
        *,
        limit: int,
        sender: str | None = None,
        order: str = "ASC",
        ttl: int,
    ) -> list[Message]:
        """The last ``limit`` messages of a session (every session when ``session_id`` is None)."""
        ...

    async def messages(
        self,
        *,
        flow_id: str | None = None,
        session_id: str | None = None,
        sender: str | None = None,
        sender_name: str | None = None,
        order: str = "ASC",
    ) -> list[Message]:
        """Messages matching every given filter, by timestamp; refreshes each session's TTL."""
        ...

    async def sessions(self, flow_id: str | None = None) -> builtins.list[str]:
        """Ids of the live sessions (of one flow, or of every flow), sorted; no TTL change."""
        ...

    async def delete_session(self, flow_id: str | None, session_id: str) -> int:
        """Delete a session (of one flow, or of every flow); the number of messages removed."""
        ...

    async def delete_flow(self, flow_id: str) -> int:
        """Delete every session of a deleted flow; the number of messages removed."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class KeyRecord(msgspec.Struct, kw_only=True, frozen=True):
    """A stored API key: never the key itself, only its SHA-256 and a visible prefix."""

    id: str
    name: str
    prefix: str
    key_hash: str
    scopes: tuple[str, ...]
    # None: every flow. Otherwise flow ids or endpoint names this key may touch.
    flows: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    created_at: datetime
    last_used_at: datetime | None = None
    total_uses: int = 0
    revoked_at: datetime | None = None


class KeyStore(Protocol):
    async def create(self, record: KeyRecord) -> KeyRecord: ...

    async def by_hash(self, key_hash: str) -> KeyRecord | None: ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def list(self) -> builtins.list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord | None:
        """Mark a key revoked (idempotent); None when there is no such key."""
        ...

    async def touch(self, key_id: str, used_at: datetime, uses: int) -> None:
        """Record ``uses`` more uses, the last at ``used_at`` (batched by the caller)."""
        ...

    async def count_usable(self, now: datetime) -> int:
        """How many keys are neither revoked nor expired."""
        ...

    async def ping(self) -> None: ...


class RateLimiter(Protocol):
    async def hit(self, bucket: str, limit: int, window: float) -> float:
        """Count one request in ``bucket``; 0 when allowed, else seconds until it would be."""
        ...


class KeyEvents(Protocol):
    """News of revoked keys shared between instances (Redis pub/sub)."""

    async def publish_revoked(self, key_id: str) -> None: ...

    def follow(self, on_revoked: Callable[[str], None], on_gap: Callable[[], None]) -> None: ...

    async def aclose(self) -> None: ...


class QueryResult(msgspec.Struct, kw_only=True):
    """What one query returned: its columns, at most ``max_rows`` rows (``truncated``
    says more were there), and the command status (``INSERT 0 1``) for other statements."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    status: str = ""


class QueryDatabase(Protocol):
    """The operator's database for the SQL Database component (FLOWSERVE_SQL_DATABASE_URL).

    Each query is one statement in a transaction of its own, read-only unless the
    operator allowed writes, cut off after the configured time. Failures of the
    query are ``QueryFailed``; a database that cannot be reached is ``Unavailable``.
    """

    async def query(self, sql: str) -> QueryResult: ...

    async def close(self) -> None: ...
