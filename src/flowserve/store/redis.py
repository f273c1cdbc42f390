"""Redis backend: conversation messages with a sliding TTL, and the flow-change channel.

Every key starts with ``settings.redis_prefix`` (default ``flowserve:``); the
layout is the block below. A session's messages are one list; two indexes
find a session's flows and a flow's sessions. Every read or write of a
session re-arms its expiry (``PEXPIRE``), so a session lives ``ttl`` seconds
after its last use; the indexes only ever lengthen (``NX`` then ``GT``) so
they outlive every list they point to. An append is one ``MULTI`` pipeline:
one round trip.

redis-py's ``Awaitable[T] | T`` results and its exceptions stay inside this
module: connection problems become ``Unavailable`` (503). A client's pool is
bounded (``FLOWSERVE_REDIS_POOL_SIZE``, plus one connection for each pub/sub
listener): a command that finds no connection free within
``FLOWSERVE_REDIS_POOL_TIMEOUT`` fails as ``PoolExhausted`` (503, Retry-After).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
import structlog
from redis import exceptions as redis_errors
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from flowserve.engine.types import Message
from flowserve.errors import FlowserveError, PoolExhausted, Unavailable
from flowserve.store.combine import WriteCombiner
from flowserve.store.messages import matches, select_history, stamped

# ---- Key layout (after the prefix) -------------------------------------------------------
MESSAGES = "messages:{flow_id}:{session_id}"  # list of JSON messages, oldest first
SESSION_FLOWS = "session:{session_id}"  # hash: flow id -> the session's TTL in ms
FLOW_SESSIONS = "flow-sessions:{flow_id}"  # set of session ids of a flow
FLOW_EVENTS = "events:flows"  # pub/sub channel: JSON {flow id: new version, or null: deleted}
# ------------------------------------------------------------------------------------------

RedisClient = aioredis.Redis

T = TypeVar("T")
log = structlog.get_logger(__name__)

_encoder = msgspec.json.Encoder()
_message_decoder = msgspec.json.Decoder(Message)
_changes_decoder = msgspec.json.Decoder(dict[str, int | None])


# The defaults of FLOWSERVE_REDIS_POOL_SIZE and _TIMEOUT.
DEFAULT_POOL_SIZE = 256
DEFAULT_POOL_TIMEOUT = 5.0
# Connections held for good by the pub/sub listeners on the shared client (flow changes,
# key revocations): beyond the pool size, so commands never wait behind them.
SUBSCRIBERS = 2


class BoundedPool(aioredis.BlockingConnectionPool):
    """redis-py's blocking pool (a bounded wait for a free connection), knowing the
    size it was configured with, for the error that names it."""

    def __init__(self, *, configured_size: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.configured_size = configured_size


def bounded_pool(
    url: str, *, pool_size: int, pool_timeout: float, reserve: int = 0, **kwargs: Any
) -> BoundedPool:
    """A pool of ``pool_size`` (+ ``reserve``) connections to ``url``; waiting for one ends
    after ``pool_timeout`` seconds."""
    pool = BoundedPool.from_url(
        url,
        configured_size=pool_size,
        max_connections=pool_size + reserve,
        timeout=pool_timeout,
        retry=stale_connection_retry(),
        **kwargs,
    )
    assert isinstance(pool, BoundedPool)
    return pool


def unavailable(exc: BaseException, client: aioredis.Redis | None = None) -> Unavailable:
    """Redis' failure as the 503 callers see: ``PoolExhausted`` when ``client``'s pool had
    no free connection in time, else ``Unavailable``."""
    if client is not None and waited_for_a_connection(exc):
        pool = client.connection_pool
        size = pool.configured_size if isinstance(pool, BoundedPool) else pool.max_connections
        return PoolExhausted("Redis connection", "redis_pool_size", size)
    reason = str(exc) or type(exc).__name__
    return Unavailable(f"Redis is unavailable: {reason}", headers={"Retry-After": "1"})


def waited_for_a_connection(exc: BaseException) -> bool:
    """Whether ``exc`` is a blocking pool's "none free in time" (redis-py raises it as a
    ConnectionError, though Redis itself is fine)."""
    return isinstance(exc, redis_errors.ConnectionError) and str(exc).startswith(
        "No connection available"
    )


def connect(
    url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT,
) -> aioredis.Redis:
    """A client (a bounded connection pool, with room for the pub/sub listeners);
    connects lazily and reconnects by itself."""
    pool = bounded_pool(
        url,
        pool_size=pool_size,
        pool_timeout=pool_timeout,
        reserve=SUBSCRIBERS,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=15,
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)


def stale_connection_retry() -> Retry:
    """Pooled connections die with a restarted Redis: reconnect and resend (a few times,
    briefly) rather than fail once per stale connection. For every pool we open."""
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3)


async def _result(value: Any) -> Any:
    # redis-py types its commands ``Awaitable[T] | T`` (sync and async share stubs).
    return await value if isinstance(value, Awaitable) else value


@asynccontextmanager
async def translated(client: aioredis.Redis | None = None) -> AsyncIterator[None]:
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        raise unavailable(exc, client) from exc
    except redis_errors.RedisError as exc:
        raise FlowserveError(f"Redis error: {exc}") from exc


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def messages(self, flow_id: str, session_id: str) -> str:
        return self.prefix + MESSAGES.format(flow_id=flow_id, session_id=session_id)

    def session(self, session_id: str) -> str:
        return self.prefix + SESSION_FLOWS.format(session_id=session_id)

    def flow(self, flow_id: str) -> str:
        return self.prefix + FLOW_SESSIONS.format(flow_id=flow_id)

    @property
    def events(self) -> str:
        return self.prefix + FLOW_EVENTS

    def parse_messages(self, key: bytes) -> tuple[str, str] | None:
        head = self.prefix + "messages:"
        text = key.decode()
        if not text.startswith(head):
            return None
        flow_id, sep, session_id = text[len(head) :].partition(":")
        return (flow_id, session_id) if sep else None


def _lengthen(pipe: Pipeline, key: str, ms: int) -> None:
    # Set an expiry when there is none, else only push it later: an index must outlive its lists.
    pipe.pexpire(key, ms, nx=True)
    pipe.pexpire(key, ms, gt=True)


# (messages key, session index, flow index, ttl ms, flow id, session id, payloads)
_Append = tuple[str, str, str, int, str, str, list[bytes]]

# The eight commands append() used to send in a MULTI pipeline, as one script: atomic
# like MULTI, one command for the client to pack and one reply to parse.
_APPEND_LUA = """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1], 'NX')
redis.call('PEXPIRE', KEYS[2], ARGV[1], 'GT')
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[1], 'NX')
redis.call('PEXPIRE', KEYS[3], ARGV[1], 'GT')
return 1
"""


def _command(*args: str | bytes | int) -> bytes:
    """One command in RESP, the Redis wire format."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else b"%d" % arg if isinstance(arg, int) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def _evalsha(sha: str, item: _Append) -> bytes:
    key, skey, fkey, ms, flow_id, session_id, payloads = item
    return _command("EVALSHA", sha, 3, key, skey, fkey, ms, flow_id, session_id, *payloads)


def _is_noscript(reply: object) -> bool:
    return isinstance(reply, redis_errors.NoScriptError)


class _BatchConnection:
    """A connection of its own for the write combiner, which has one batch in flight at a time.

    redis-py's pipeline costs about 70 us of CPU per call before any I/O (command
    stack, retry wrapper, pool lock, per-command timeouts): more than a bare
    Starlette request. The combiner already serialises its batches, so it needs
    no pool: it packs the batch itself, writes it once and reads the replies,
    under one timeout. Any failure drops the connection; the next batch
    reconnects (redis-py's connection does, with the client's address,
    credentials and TLS settings).
    """

    def __init__(self, client: aioredis.Redis, timeout: float = 5.0) -> None:
        pool = client.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": None}  # ours covers the batch
        self._connection = pool.connection_class(**kwargs)
        self._timeout = timeout

    async def send(self, commands: list[bytes]) -> list[Any]:
        """Each command's reply, an error reply as its exception (``ResponseError``).

        A connection that was idle may have died with a restarted Redis: when it
        fails before answering, the commands not yet answered are sent once more on
        a fresh connection rather than failing the batch (a write Redis took but
        never answered would then be applied twice: the same risk redis-py's own
        retry takes).
        """
        replies: list[Any] = []
        try:
            await self._send(commands, replies)
        except (redis_errors.ConnectionError, ConnectionError):
            await self._send(commands[len(replies) :], replies)
        return replies

    async def _send(self, commands: list[bytes], replies: list[Any]) -> None:
        connection = self._connection
        try:
            async with asyncio.timeout(self._timeout):
                await connection.send_packed_command(commands, check_health=False)
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except redis_errors.ResponseError as exc:  # a reply: the stream is intact
                        replies.append(exc)
        except BaseException:
            # Replies may be left unread: this connection can't be trusted any more.
            await connection.disconnect(nowait=True)
            raise

    async def close(self) -> None:
        await self._connection.disconnect()


class RedisMessageStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._keys = Keys(prefix)
        # Runs finishing together share one round trip; each append still returns
        # only once its batch is written (see store/combine.py).
        self._writes: WriteCombiner[_Append] = WriteCombiner(self._write_batch)
        self._append_sha: str | None = None
        self._writer = _BatchConnection(client)

    async def _execute(self, build: Callable[[Pipeline], None]) -> list[Any]:
        async with translated(self._redis), self._redis.pipeline(transaction=True) as pipe:
            build(pipe)
            result: list[Any] = await pipe.execute()
            return result

    async def append(
        self, flow_id: str, session_id: str, messages: list[Message], ttl: int
    ) -> None:
        if not messages:
            return
        ms = ttl * 1000
        key = self._keys.messages(flow_id, session_id)
        payloads = [_encoder.encode(stamped(m, flow_id, session_id)) for m in messages]

        session_key, flow_key = self._keys.session(session_id), self._keys.flow(flow_id)
        await self._writes.submit((key, session_key, flow_key, ms, flow_id, session_id, payloads))

    async def _write_batch(self, items: Sequence[_Append]) -> None:
        """One EVALSHA per append, all sent in one write on the writer's own connection."""
        async with translated(self._redis):
            if self._append_sha is None:
                self._append_sha = await self._script_load()
            commands = [_evalsha(self._append_sha, item) for item in items]
            replies = await self._writer.send(commands)
            if any(_is_noscript(r) for r in replies):
                # Redis restarted (or SCRIPT FLUSH) since the script was loaded. A NOSCRIPT
                # reply means that append did nothing: load the script again, resend those.
                self._append_sha = await self._script_load()
                again = [i for i, r in zip(items, replies, strict=True) if _is_noscript(r)]
                replies = [r for r in replies if not _is_noscript(r)]
                replies += await self._writer.send([_evalsha(self._append_sha, i) for i in again])
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply

    async def _script_load(self) -> str:
        sha = await _result(self._redis.script_load(_APPEND_LUA))
        return sha.decode() if isinstance(sha, bytes) else str(sha)

    async def _session_ids(self, flow_id: str) -> list[str]:
        async with translated(self._redis):
            members: set[bytes] = await _result(self._redis.smembers(self._keys.flow(flow_id)))
        return sorted(m.decode() for m in members)

    async def _read(
        self, pairs: Iterable[tuple[str, str, int | None]], *, tail: int = 0
    ) -> list[Message]:
        """Read each (flow, session) list (its last ``tail`` items, or all when 0) and re-arm
        its TTL (ms; None keeps the stored one)."""
        wanted = list(pairs)
        if not wanted:
            return []

        def build(pipe: Pipeline) -> None:
            for flow_id, session_id, ms in wanted:
                key = self._keys.messages(flow_id, session_id)
                pipe.lrange(key, -tail if tail > 0 else 0, -1)
                if ms is not None:
                    pipe.pexpire(key, ms)
                    _lengthen(pipe, self._keys.session(session_id), ms)
                    _lengthen(pipe, self._keys.flow(flow_id), ms)

        results = await self._execute(build)
        found: list[Message] = []
        index = 0
        for _, _, ms in wanted:
            found.extend(_message_decoder.decode(raw) for raw in results[index])
            index += 1 if ms is None else 6
        return found

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
        sessions = [session_id] if session_id is not None else await self._session_ids(flow_id)
        # One session, no filter: only the last ``limit`` messages need to cross the wire.
        tail = limit if session_id is not None and sender is None and limit > 0 else 0
        found = await self._read(((flow_id, s, ttl * 1000) for s in sessions), tail=tail)
        return select_history(found, limit=limit, sender=sender, order=order)

    async def _pairs(self, flow_id: str | None, session_id: str | None) -> list[tuple[str, str]]:
        if session_id is not None:
            async with translated(self._redis):
                flows: list[bytes] = await _result(
                    self._redis.hkeys(self._keys.session(session_id))
                )
            ids = sorted(f.decode() for f in flows)
            return [(f, session_id) for f in ids if flow_id is None or f == flow_id]
        if flow_id is not None:
            return [(flow_id, s) for s in await self._session_ids(flow_id)]
        pairs: list[tuple[str, str]] = []
        async with translated(self._redis):
            pattern = self._keys.prefix + "messages:*"
            async for key in self._redis.scan_iter(match=pattern, count=500):
                pair = self._keys.parse_messages(key)
                if pair is not None:
                    pairs.append(pair)
        return sorted(pairs)

    async def _ttls(self, pairs: list[tuple[str, str]]) -> list[int | None]:
        def build(pipe: Pipeline) -> None:
            for flow_id, session_id in pairs:
                pipe.hget(self._keys.session(session_id), flow_id)

        return [int(v) if v is not None else None for v in await self._execute(build)]

    async def messages(
        self,
        *,
        flow_id: str | None = None,
        session_id: str | None = None,
        sender: str | None = None,
        sender_name: str | None = None,
        order: str = "ASC",
    ) -> list[Message]:
        pairs = await self._pairs(flow_id, session_id)
        if not pairs:
            return []
        ttls = await self._ttls(pairs)
        found = await self._read((f, s, ms) for (f, s), ms in zip(pairs, ttls, strict=True))
        selected = [m for m in found if matches(m, sender, sender_name)]
        selected.sort(key=lambda m: m.timestamp, reverse=order.upper() == "DESC")
        return selected

    async def sessions(self, flow_id: str | None = None) -> list[str]:
        pairs = await self._pairs(flow_id, None)
        if not pairs:
            return []

        def build(pipe: Pipeline) -> None:
            for f, s in pairs:
                pipe.exists(self._keys.messages(f, s))

        alive = await self._execute(build)
        return sorted({s for (_, s), live in zip(pairs, alive, strict=True) if live})

    async def delete_session(self, flow_id: str | None, session_id: str) -> int:
        pairs = await self._pairs(flow_id, session_id)
        if flow_id is not None and (flow_id, session_id) not in pairs:
            pairs.append((flow_id, session_id))

        def build(pipe: Pipeline) -> None:
            for f, s in pairs:
                pipe.llen(self._keys.messages(f, s))
            for f, s in pairs:
                pipe.delete(self._keys.messages(f, s))
                pipe.hdel(self._keys.session(s), f)
                pipe.srem(self._keys.flow(f), s)

        results = await self._execute(build)
        return sum(int(n) for n in results[: len(pairs)])

    async def delete_flow(self, flow_id: str) -> int:
        sessions = await self._session_ids(flow_id)

        def build(pipe: Pipeline) -> None:
            for s in sessions:
                pipe.llen(self._keys.messages(flow_id, s))
            for s in sessions:
                pipe.delete(self._keys.messages(flow_id, s))
                pipe.hdel(self._keys.session(s), flow_id)
            pipe.delete(self._keys.flow(flow_id))

        results = await self._execute(build)
        return sum(int(n) for n in results[: len(sessions)])

    async def ping(self) -> None:
        async with translated(self._redis):
            await _result(self._redis.ping())

    async def close(self) -> None:
        await self._writes.aclose()
        await self._writer.close()  # the client is shared; its owner closes it


class RedisFlowEvents:
    """Tells every instance which flows changed, so each drops its compiled copy at once."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._channel = Keys(prefix).events

    async def publish(self, changes: dict[str, int | None]) -> None:
        if changes:
            async with translated(self._redis):
                await _result(self._redis.publish(self._channel, _encoder.encode(changes)))

    async def listen(
        self,
        on_change: Callable[[dict[str, int | None]], None],
        on_reset: Callable[[], None],
        *,
        subscribed: asyncio.Event | None = None,
    ) -> None:
        """Deliver changes until cancelled; resubscribes after a lost connection.

        ``on_reset`` runs on every (re)subscription: messages may have been missed
        while not subscribed, so everything cached must be considered stale.
        """
        delay = 0.2
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    on_reset()
                    if subscribed is not None:
                        subscribed.set()
                    delay = 0.2
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            _deliver(message["data"], on_change)
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
                log.warning("flow_events_disconnected", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _deliver(data: bytes, on_change: Callable[[dict[str, int | None]], None]) -> None:
    try:
        changes = _changes_decoder.decode(data)
    except msgspec.DecodeError:
        log.warning("flow_events_bad_message")
        return
    on_change(changes)
