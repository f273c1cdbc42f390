"""In-process stores: the embedded default when no database or Redis is configured.

State lives in this process only and is lost on restart; several instances do
not share it. That is what ``make run`` on a bare machine needs, not production.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from flowserve.engine.types import Message
from flowserve.errors import EndpointNameTaken
from flowserve.store.base import FlowRecord, KeyRecord


class MemoryFlowStore:
    def __init__(self) -> None:
        self._by_id: dict[str, FlowRecord] = {}
        self._by_endpoint: dict[str, str] = {}

    async def get(self, ref: str) -> FlowRecord | None:
        record = self._by_id.get(ref)
        if record is None:
            flow_id = self._by_endpoint.get(ref)
            record = self._by_id.get(flow_id) if flow_id else None
        return record

    async def list(self, *, limit: int = 50, offset: int = 0) -> list[FlowRecord]:
        records = sorted(self._by_id.values(), key=lambda r: (r.name, r.id))
        return records[offset : offset + limit]

    async def upsert(self, record: FlowRecord) -> tuple[FlowRecord, bool]:
        if record.endpoint_name:
            holder = self._by_endpoint.get(record.endpoint_name)
            if holder is not None and holder != record.id:
                raise EndpointNameTaken(
                    f"Endpoint name '{record.endpoint_name}' is used by flow {holder}"
                )
        now = datetime.now(UTC)
        previous = self._by_id.get(record.id)
        created = previous is None
        stored = FlowRecord(
            id=record.id,
            name=record.name,
            data=record.data,
            description=record.description,
            endpoint_name=record.endpoint_name,
            access_type=record.access_type,
            webhook=record.webhook,
            mcp_enabled=record.mcp_enabled,
            folder_id=record.folder_id,
            session_ttl=record.session_ttl,
            version=1 if previous is None else previous.version + 1,
            created_at=now if previous is None else previous.created_at,
            updated_at=now,
        )
        if previous is not None and previous.endpoint_name:
            self._by_endpoint.pop(previous.endpoint_name, None)
        self._by_id[record.id] = stored
        if stored.endpoint_name:
            self._by_endpoint[stored.endpoint_name] = stored.id
        return stored, created

    async def delete(self, flow_id: str) -> bool:
        record = self._by_id.pop(flow_id, None)
        if record is None:
            return False
        if record.endpoint_name:
            self._by_endpoint.pop(record.endpoint_name, None)
        return True

    async def ping(self) -> None:
        return None


@dataclass(slots=True)
class _Session:
    messages: list[Message] = field(default_factory=list)
    expires_at: float = 0.0


class MemoryMessageStore:
    """Messages per (flow, session) with a sliding TTL, like the Redis store."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], _Session] = {}

    def _live(self, key: tuple[str, str], ttl: int) -> _Session | None:
        session = self._sessions.get(key)
        now = time.monotonic()
        if session is not None and session.expires_at <= now:
            del self._sessions[key]
            return None
        if session is not None:
            session.expires_at = now + ttl
        return session

    async def append(
        self, flow_id: str, session_id: str, messages: list[Message], ttl: int
    ) -> None:
        key = (flow_id, session_id)
        session = self._live(key, ttl)
        if session is None:
            session = self._sessions[key] = _Session(expires_at=time.monotonic() + ttl)
        session.messages.extend(messages)

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
        keys = (
            [(flow_id, session_id)]
            if session_id is not None
            else [k for k in list(self._sessions) if k[0] == flow_id]
        )
        found: list[Message] = []
        for key in keys:
            session = self._live(key, ttl)
            if session is not None:
                found.extend(m for m in session.messages if sender is None or m.sender == sender)
        found.sort(key=lambda m: m.timestamp)
        found = found[-limit:] if limit > 0 else []
        return found if order.upper() == "ASC" else found[::-1]

    async def delete_session(self, flow_id: str | None, session_id: str) -> int:
        keys = [
            k for k in self._sessions if k[1] == session_id and (flow_id is None or k[0] == flow_id)
        ]
        return sum(len(self._sessions.pop(k).messages) for k in keys)

    async def ping(self) -> None:
        return None


class MemoryKeyStore:
    def __init__(self) -> None:
        self._by_id: dict[str, KeyRecord] = {}
        self._by_hash: dict[str, str] = {}

    async def create(self, record: KeyRecord) -> KeyRecord:
        self._by_id[record.id] = record
        self._by_hash[record.key_hash] = record.id
        return record

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        key_id = self._by_hash.get(key_hash)
        return self._by_id.get(key_id) if key_id else None

    async def get(self, key_id: str) -> KeyRecord | None:
        return self._by_id.get(key_id)

    async def list(self) -> list[KeyRecord]:
        return sorted(self._by_id.values(), key=lambda r: (r.created_at, r.id))

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord | None:
        record = self._by_id.get(key_id)
        if record is None or record.revoked_at is not None:
            return record
        record = self._by_id[key_id] = msgspec.structs.replace(record, revoked_at=at)
        return record

    async def touch(self, key_id: str, used_at: datetime, uses: int) -> None:
        record = self._by_id.get(key_id)
        if record is not None:
            self._by_id[key_id] = msgspec.structs.replace(
                record, last_used_at=used_at, total_uses=record.total_uses + uses
            )

    async def count_usable(self, now: datetime) -> int:
        return sum(
            1
            for r in self._by_id.values()
            if r.revoked_at is None and (r.expires_at is None or r.expires_at > now)
        )

    async def ping(self) -> None:
        return None


class MemoryRateLimiter:
    """Fixed windows counted in this process; the Redis limiter shares them across instances."""

    def __init__(self, *, max_buckets: int = 100_000) -> None:
        self._buckets: dict[str, tuple[int, float]] = {}
        self._max_buckets = max_buckets

    async def hit(self, bucket: str, limit: int, window: float) -> float:
        now = time.monotonic()
        count, resets_at = self._buckets.get(bucket, (0, 0.0))
        if resets_at <= now:
            if len(self._buckets) >= self._max_buckets:
                self._prune(now)
            count, resets_at = 0, now + window
        count += 1
        self._buckets[bucket] = (count, resets_at)
        return 0.0 if count <= limit else resets_at - now

    def _prune(self, now: float) -> None:
        self._buckets = {k: v for k, v in self._buckets.items() if v[1] > now}
