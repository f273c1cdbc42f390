"""Redis backends for access control: shared rate-limit windows and key revocation news.

Every instance counts requests in the same Redis keys, so a limit holds across
a scaled-out deployment; a revoked key is announced on a channel so every
instance drops it from its verified-key cache at once instead of waiting for
the cache entry to expire.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from flowserve.store.base import RateLimiter

log = structlog.get_logger(__name__)

# Key layout under the configured prefix.
RATE_KEY = "rate:{bucket}"
REVOKED_CHANNEL = "keys:revoked"

# One round trip, atomic: count the hit, start the window on the first one, and
# report how long until the window ends once the count is over the limit.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  return ttl
end
return 0
"""


class RedisRateLimiter:
    """Fixed windows in Redis. While Redis is unreachable, each instance counts on its
    own (``fallback``) rather than refusing every request: a limit is a guard
    against abuse, not a reason to go down with the cache."""

    def __init__(self, client: aioredis.Redis, prefix: str, fallback: RateLimiter) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_HIT)
        self._fallback = fallback
        self._degraded = False

    async def hit(self, bucket: str, limit: int, window: float) -> float:
        key = self._prefix + RATE_KEY.format(bucket=bucket)
        window_ms = max(1, math.ceil(window * 1000))
        try:
            wait_ms = await cast(Any, self._script(keys=[key], args=[window_ms, limit]))
        except (RedisError, OSError) as exc:
            if not self._degraded:
                self._degraded = True
                log.warning("rate_limits_local_only", error=type(exc).__name__)
            return await self._fallback.hit(bucket, limit, window)
        if self._degraded:
            self._degraded = False
            log.info("rate_limits_shared_again")
        return int(wait_ms) / 1000.0


class RedisKeyEvents:
    """Publish and follow key revocations on ``<prefix>keys:revoked``."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._channel = prefix + REVOKED_CHANNEL
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def publish_revoked(self, key_id: str) -> None:
        try:
            await cast(Any, self._client.publish(self._channel, key_id))
        except RedisError as exc:
            # The cache TTL still bounds how long other instances accept the key.
            log.warning("key_revocation_not_published", error=type(exc).__name__)

    def follow(self, on_revoked: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        """Call ``on_revoked(key_id)`` for each announcement; ``on_gap()`` after a reconnect,
        when announcements may have been missed."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(on_revoked, on_gap))

    async def wait_subscribed(self) -> None:
        """Until the subscription is live (tests publish only after it)."""
        await self._subscribed.wait()

    async def _listen(self, on_revoked: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        delay = 0.1
        first = True
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if not first:
                    on_gap()
                first = False
                self._subscribed.set()
                delay = 0.1
                async for message in pubsub.listen():
                    data = message.get("data")
                    if isinstance(data, bytes):
                        on_revoked(data.decode())
                    elif isinstance(data, str):
                        on_revoked(data)
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("key_revocations_disconnected", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed in redis 8

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
