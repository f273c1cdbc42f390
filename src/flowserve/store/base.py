"""Store protocols: what the service layer needs from persistent state.

Each protocol has an embedded implementation (``store/memory.py``) and a
production one (PostgreSQL for flows, Redis for sessions); all pass the same
contract tests. Backends translate their own exceptions into ``Unavailable``
or ``Conflict`` here, at the boundary, so callers never see asyncpg or redis.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec

from flowserve.engine.types import Message


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


class FlowStore(Protocol):
    async def get(self, ref: str) -> FlowRecord | None:
        """A flow by UUID or endpoint name."""
        ...

    async def list(self, *, limit: int = 50, offset: int = 0) -> list[FlowRecord]: ...

    async def upsert(self, record: FlowRecord) -> tuple[FlowRecord, bool]:
        """Insert or replace by id; returns the stored record and whether it was created."""
        ...

    async def delete(self, flow_id: str) -> bool: ...

    async def ping(self) -> None:
        """Raise ``Unavailable`` when the backend cannot be reached."""
        ...


class MessageStore(Protocol):
    """Conversation messages per (flow, session), each session expiring after a sliding TTL."""

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

    async def delete_session(self, flow_id: str | None, session_id: str) -> int: ...

    async def ping(self) -> None: ...


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

    async def list(self) -> list[KeyRecord]:
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
