"""In-process access-control stores: API keys and rate-limit windows for one process.

``MemoryKeyStore`` backs tests and throwaway runs (the embedded default keeps
keys in the SQLite file); ``MemoryRateLimiter`` is the limiter whenever no
Redis is configured, so limits then hold per instance, not across instances.
"""

from __future__ import annotations

import builtins
import time
from datetime import datetime

import msgspec

from flowserve.store.base import KeyRecord


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

    async def list(self) -> builtins.list[KeyRecord]:
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
            # Usage flushes from several instances may arrive out of order.
            latest = max(used_at, record.last_used_at or used_at)
            self._by_id[key_id] = msgspec.structs.replace(
                record, last_used_at=latest, total_uses=record.total_uses + uses
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
