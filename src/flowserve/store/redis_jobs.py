"""The durable job queue and event subscriptions on Redis.

Jobs are hashes; the queue is a Redis Stream read through one consumer group,
so each entry is held by one worker at a time and stays in the group's pending
list until acknowledged. A worker that dies leaves its entries pending; once
they have been idle longer than the visibility timeout, ``claim`` takes them
over with XAUTOCLAIM. Live workers renew their leases (XCLAIM ... JUSTID) well
inside that timeout. Retries wait in a sorted set until due; jobs that fail
for good are copied to a dead-letter stream. Every state change that must not
race (enqueue with an idempotency key, start, final writes, cancel) is one Lua
script, and a final state is never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from flowserve.errors import Unavailable
from flowserve.store.jobs import DeliveryAttempt, Job, JobStatus, Lease, Subscription
from flowserve.store.redis import DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT, bounded_pool, unavailable

T = TypeVar("T")

# Key layout, under the configured prefix (e.g. "flowserve:"):
JOB = "jobs:job:"  # hash per job
STREAM = "jobs:stream"  # the queue
GROUP = "workers"  # its consumer group
DELAYED = "jobs:delayed"  # zset job id -> due time (retries)
DEAD = "jobs:dead"  # dead-letter stream
IDEMPOTENCY = "jobs:idem:"  # idempotency key -> first job id
SUBSCRIPTIONS = "hooks:subs:"  # hash per flow: subscription id -> JSON
DELIVERY_LOG = "hooks:log:"  # list per subscription, newest first

DELIVERY_LOG_LENGTH = 200
IDLE_CONSUMER_MS = 24 * 3600 * 1000  # empty consumers idle this long are dropped
RETRY_POLL = 0.1  # seconds between looks at the retry set while it is not empty

_ACK = """
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
local final = status == 'succeeded' or status == 'failed' or status == 'cancelled'
"""

_ENQUEUE = """
if ARGV[2] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing and redis.call('EXISTS', KEYS[4] .. existing) == 1 then return existing end
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
return ARGV[1]
"""

_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  if redis.call('ZREM', KEYS[1], id) == 1 then redis.call('XADD', KEYS[2], '*', 'job', id) end
end
return #due
"""

# KEYS job, stream, dead; ARGV group, entry, now, ttl, job id
_START = """
local status = redis.call('HGET', KEYS[1], 'status')
local function ack()
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end
if not status then ack() return 'gone' end
if status == 'succeeded' or status == 'failed' or status == 'cancelled' then
  ack() return 'final'
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  ack() return 'cancelled'
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
local limit = tonumber(redis.call('HGET', KEYS[1], 'max_attempts') or '1')
if attempts >= limit then
  local err = 'gave up after ' .. attempts .. ' attempts: the worker running it stopped'
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[3], 'error', err)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('XADD', KEYS[3], '*', 'job', ARGV[5], 'error', err)
  ack() return 'exhausted'
end
redis.call('HSET', KEYS[1], 'status', 'running', 'attempts', attempts + 1, 'started_at', ARGV[3])
return 'run'
"""

# KEYS job, stream; ARGV group, entry, now, ttl, result
_COMPLETE = (
    _ACK
    + """
if not status or final then return 0 end
redis.call('HSET', KEYS[1], 'status', 'succeeded', 'finished_at', ARGV[3], 'result', ARGV[5],
           'error', '')
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
)

# KEYS job, stream, delayed, dead; ARGV group, entry, now, ttl, job id, error, retry_at ('' = never)
_FAIL = (
    _ACK
    + """
if not status or final then return 'final' end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[3], 'error', ARGV[6])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 'cancelled'
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'error', ARGV[6])
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[5])
  return 'retry'
end
redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[3], 'error', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('XADD', KEYS[4], '*', 'job', ARGV[5], 'error', ARGV[6])
return 'failed'
"""
)

# KEYS job, stream, delayed; ARGV group, entry, due, job id
_DEFER = (
    _ACK
    + """
if not status or final then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('HSET', KEYS[1], 'status', 'queued')
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""
)

# KEYS job, stream; ARGV group, entry, now, ttl
_CANCELLED = (
    _ACK
    + """
if not status or final then return 0 end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
)

# KEYS job, delayed; ARGV job id, now, ttl
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
if status == 'succeeded' or status == 'failed' or status == 'cancelled' then return status end
redis.call('HSET', KEYS[1], 'cancel', '1')
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 'cancelled'
end
return status
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _job_from_hash(job_id: str, raw: Mapping[Any, Any]) -> Job:
    fields = {_text(k): _text(v) for k, v in raw.items()}

    def number(name: str) -> float | None:
        value = fields.get(name)
        return float(value) if value else None

    result = fields.get("result")
    return Job(
        id=job_id,
        kind=fields.get("kind", ""),
        payload=msgspec.json.decode(fields.get("payload", "{}")),
        status=cast(JobStatus, fields.get("status", "queued")),
        attempts=int(fields.get("attempts", "0")),
        max_attempts=int(fields.get("max_attempts", "1")),
        flow_id=fields.get("flow_id") or None,
        created_at=number("created_at") or 0.0,
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        result=msgspec.json.decode(result) if result else None,
        error=fields.get("error") or None,
        cancel_requested=fields.get("cancel") == "1",
    )


class RedisJobQueue:
    """``JobQueue`` on Redis Streams (see the module docstring)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        visibility_timeout: float,
        result_ttl: int,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._stream = prefix + STREAM
        self._delayed = prefix + DELAYED
        self._dead = prefix + DEAD
        self._visibility_ms = max(1, int(visibility_timeout * 1000))
        self._ttl = result_ttl
        self._enqueue = client.register_script(_ENQUEUE)
        self._promote = client.register_script(_PROMOTE)
        self._start = client.register_script(_START)
        self._complete = client.register_script(_COMPLETE)
        self._fail = client.register_script(_FAIL)
        self._defer = client.register_script(_DEFER)
        self._cancelled = client.register_script(_CANCELLED)
        self._cancel = client.register_script(_CANCEL)
        self._group_ready = False
        self._cursor = "0-0"

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}{JOB}{job_id}"

    async def _call(self, action: Callable[[], Awaitable[T]]) -> T:
        try:
            return await action()
        except RedisError as exc:
            raise unavailable(exc, self._redis) from exc

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def enqueue(self, job: Job, *, idempotency_key: str | None = None) -> tuple[Job, bool]:
        fields: list[Any] = [
            "kind", job.kind,
            "payload", msgspec.json.encode(job.payload),
            "status", "queued",
            "attempts", 0,
            "max_attempts", job.max_attempts,
            "flow_id", job.flow_id or "",
            "created_at", job.created_at or time.time(),
        ]  # fmt: skip
        keys = [
            self._key(job.id),
            self._stream,
            f"{self._prefix}{IDEMPOTENCY}{idempotency_key or ''}",
            f"{self._prefix}{JOB}",
        ]
        args = [job.id, str(self._ttl) if idempotency_key else "", *fields]

        async def run() -> Any:
            await self._ensure_group()
            return await self._enqueue(keys=keys, args=args)

        stored_id = _text(await self._call(run))
        stored = await self.get(stored_id)
        if stored is None:  # expired between the script and this read
            stored = job
        return stored, stored_id == job.id

    async def get(self, job_id: str) -> Job | None:
        raw = await self._call(lambda: self._redis.hgetall(self._key(job_id)))
        return _job_from_hash(job_id, raw) if raw else None

    async def claim(self, consumer: str, count: int, block: float) -> list[Lease]:
        async def run() -> list[Lease]:
            await self._ensure_group()
            await self._promote(keys=[self._delayed, self._stream], args=[time.time(), 100])
            # While retries are pending, wake up in time for them: the next one due, or
            # one scheduled meanwhile by another worker (hence the short ceiling).
            wait = block
            upcoming = await self._redis.zrange(self._delayed, 0, 0, withscores=True)
            if upcoming:
                due = float(upcoming[0][1]) - time.time()
                wait = max(0.001, min(block, RETRY_POLL, due))
            # Walk the pending list a page per call, so abandoned entries deep in a long
            # list (behind live workers' ones) are found too.
            reclaimed: Any = await self._redis.xautoclaim(
                self._stream, GROUP, consumer, self._visibility_ms, self._cursor, count=count
            )
            self._cursor = _text(reclaimed[0])
            leases = [_lease(entry) for entry in reclaimed[1] if entry and entry[1]]
            if len(leases) < count:
                fresh: Any = await self._redis.xreadgroup(
                    GROUP,
                    consumer,
                    {self._stream: ">"},
                    count=count - len(leases),
                    block=None if leases else max(1, int(wait * 1000)),
                )
                for _, entries in fresh or []:
                    leases.extend(_lease(entry) for entry in entries)
            return leases

        return await self._call(run)

    async def start(self, lease: Lease, consumer: str) -> Job | None:
        outcome = await self._call(
            lambda: self._start(
                keys=[self._key(lease.job_id), self._stream, self._dead],
                args=[GROUP, lease.entry_id, time.time(), self._ttl, lease.job_id],
            )
        )
        if _text(outcome) != "run":
            return None
        return await self.get(lease.job_id)

    async def heartbeat(self, consumer: str, leases: list[Lease]) -> set[str]:
        if not leases:
            return set()

        async def run() -> set[str]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xclaim(
                    self._stream,
                    GROUP,
                    consumer,
                    0,
                    [lease.entry_id for lease in leases],
                    justid=True,
                )
                for lease in leases:
                    pipe.hget(self._key(lease.job_id), "cancel")
                replies = await pipe.execute()
            return {
                lease.job_id
                for lease, flag in zip(leases, replies[1:], strict=True)
                if flag is not None and _text(flag) == "1"
            }

        return await self._call(run)

    async def complete(self, lease: Lease, result: Any) -> bool:
        written = await self._call(
            lambda: self._complete(
                keys=[self._key(lease.job_id), self._stream],
                args=[GROUP, lease.entry_id, time.time(), self._ttl, msgspec.json.encode(result)],
            )
        )
        return bool(written)

    async def fail(self, lease: Lease, error: str, retry_in: float | None) -> Job | None:
        retry_at = "" if retry_in is None else str(time.time() + retry_in)
        await self._call(
            lambda: self._fail(
                keys=[self._key(lease.job_id), self._stream, self._delayed, self._dead],
                args=[GROUP, lease.entry_id, time.time(), self._ttl, lease.job_id, error, retry_at],
            )
        )
        return await self.get(lease.job_id)

    async def defer(self, lease: Lease, delay: float) -> None:
        await self._call(
            lambda: self._defer(
                keys=[self._key(lease.job_id), self._stream, self._delayed],
                args=[GROUP, lease.entry_id, time.time() + delay, lease.job_id],
            )
        )

    async def finish_cancelled(self, lease: Lease) -> None:
        await self._call(
            lambda: self._cancelled(
                keys=[self._key(lease.job_id), self._stream],
                args=[GROUP, lease.entry_id, time.time(), self._ttl],
            )
        )

    async def cancel(self, job_id: str) -> Job | None:
        outcome = await self._call(
            lambda: self._cancel(
                keys=[self._key(job_id), self._delayed], args=[job_id, time.time(), self._ttl]
            )
        )
        return await self.get(job_id) if _text(outcome) else None

    async def dead_letters(self, limit: int = 100) -> list[Job]:
        entries: Any = await self._call(lambda: self._redis.xrevrange(self._dead, count=limit))
        jobs: list[Job] = []
        for _, fields in entries:
            job = await self.get(_text(fields[b"job"]))
            if job is not None:
                jobs.append(job)
        return jobs

    async def retire(self, consumer: str) -> None:
        async def run() -> None:
            for info in await self._redis.xinfo_consumers(self._stream, GROUP):
                name = _text(info["name"])
                idle_long = info["idle"] > IDLE_CONSUMER_MS
                if info["pending"] == 0 and (name == consumer or idle_long):
                    await self._redis.xgroup_delconsumer(self._stream, GROUP, name)

        await self._call(run)

    async def ping(self) -> None:
        await self._call(self._redis.ping)


def _lease(entry: Any) -> Lease:
    entry_id, fields = entry
    return Lease(_text(entry_id), _text(fields[b"job"]))


class RedisSubscriptionStore:
    """Subscriptions as one hash per flow; the delivery log as a bounded list."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, log_ttl: int) -> None:
        self._redis = client
        self._prefix = prefix
        self._log_ttl = log_ttl

    async def _call(self, action: Callable[[], Awaitable[T]]) -> T:
        try:
            return await action()
        except RedisError as exc:
            raise unavailable(exc, self._redis) from exc

    async def put(self, subscription: Subscription) -> None:
        key = f"{self._prefix}{SUBSCRIPTIONS}{subscription.flow_id}"
        value = msgspec.json.encode(subscription)
        await self._call(lambda: self._redis.hset(key, subscription.id, value))

    async def get(self, flow_id: str, subscription_id: str) -> Subscription | None:
        key = f"{self._prefix}{SUBSCRIPTIONS}{flow_id}"
        raw = await self._call(lambda: self._redis.hget(key, subscription_id))
        return msgspec.json.decode(raw, type=Subscription) if raw else None

    async def of_flow(self, flow_id: str) -> list[Subscription]:
        key = f"{self._prefix}{SUBSCRIPTIONS}{flow_id}"
        raw = await self._call(lambda: self._redis.hvals(key))
        subs = [msgspec.json.decode(value, type=Subscription) for value in raw]
        return sorted(subs, key=lambda s: (s.created_at, s.id))

    async def delete(self, flow_id: str, subscription_id: str) -> bool:
        key = f"{self._prefix}{SUBSCRIPTIONS}{flow_id}"
        log = f"{self._prefix}{DELIVERY_LOG}{subscription_id}"

        async def run() -> bool:
            removed = await self._redis.hdel(key, subscription_id)
            await self._redis.delete(log)
            return bool(removed)

        return await self._call(run)

    async def delete_flow(self, flow_id: str) -> int:
        key = f"{self._prefix}{SUBSCRIPTIONS}{flow_id}"

        async def run() -> int:
            ids = await self._redis.hkeys(key)
            logs = [f"{self._prefix}{DELIVERY_LOG}{_text(sid)}" for sid in ids]
            await self._redis.delete(key, *logs)
            return len(ids)

        return await self._call(run)

    async def record(self, subscription_id: str, attempt: DeliveryAttempt) -> None:
        key = f"{self._prefix}{DELIVERY_LOG}{subscription_id}"

        async def run() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(key, msgspec.json.encode(attempt))
                pipe.ltrim(key, 0, DELIVERY_LOG_LENGTH - 1)
                pipe.expire(key, self._log_ttl)
                await pipe.execute()

        await self._call(run)

    async def deliveries(self, subscription_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        key = f"{self._prefix}{DELIVERY_LOG}{subscription_id}"
        raw = await self._call(lambda: self._redis.lrange(key, 0, limit - 1))
        return [msgspec.json.decode(value, type=DeliveryAttempt) for value in raw]

    async def ping(self) -> None:
        await self._call(self._redis.ping)


@asynccontextmanager
async def open_redis(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE, pool_timeout: float = DEFAULT_POOL_TIMEOUT
) -> AsyncIterator[aioredis.Redis]:
    """A client for ``url``; raises ``Unavailable`` when Redis cannot be reached.

    Its pool is as bounded as the shared client's (``FLOWSERVE_REDIS_POOL_SIZE``): a
    caller waits at most ``pool_timeout`` for a free connection, then ``PoolExhausted``.
    """
    pool = bounded_pool(
        url,
        pool_size=pool_size,
        pool_timeout=pool_timeout,
        socket_timeout=30,
        health_check_interval=15,
    )
    client = aioredis.Redis(connection_pool=pool)
    try:
        try:
            await client.ping()
        except RedisError as exc:
            raise Unavailable(f"Redis at {url} is unavailable: {exc}") from exc
        yield client
    finally:
        await client.aclose()
        await pool.aclose()
