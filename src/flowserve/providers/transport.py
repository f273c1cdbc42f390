"""HTTP for provider clients: JSON posts and server-sent events, with retries.

Retries are bounded and back off exponentially (honouring ``Retry-After``) on
429, 5xx and connection failures. Every failure leaves this module as an
``UpstreamError`` naming the provider and its own message; the API key is
never part of it (provider messages that echo a key are redacted).

Provider calls go through aiohttp, not the httpx client the other outbound
components use: a model call is on every LLM run's critical path, and on
loopback aiohttp spends about 160 us of CPU per call where httpx spends
800-1300 us (streamed: about 0.4 ms against 1.7-2.2 ms), which was most of
the latency flowserve added to a model's.

How many exchanges are in flight at once is bounded by ``ConnectionSlots``,
not by aiohttp's connector (whose default of 100 connections made every
further model call queue without end): the connector is unlimited, and a
call takes a slot before it connects, holds it until its answer (the whole
streamed answer) has been read, and gives it back while it sleeps before a
retry. A free slot costs a comparison; only a call that finds none waits, at
most ``provider_pool_timeout`` seconds, then fails as ``PoolExhausted`` (503
with Retry-After).
"""

from __future__ import annotations

import asyncio
import os
import random
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
import msgspec
from aiohttp.http_exceptions import HttpProcessingError

from flowserve.errors import PoolExhausted, UpstreamError

# What reading a decoded answer that is not the expected shape raises: a missing key,
# a list where a dict should be, a string where a number should be.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_MAX_RETRY_AFTER = 30.0
_MAX_MESSAGE = 500
# The longest line a streamed answer may send (aiohttp's buffer); a longer one is garbage.
MAX_LINE = 1 << 20
# What a failed exchange raises: aiohttp's errors, timeouts, and a malformed (or overlong)
# HTTP message or line.
_EXCHANGE_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, HttpProcessingError)

T = TypeVar("T")

# The defaults of FLOWSERVE_PROVIDER_POOL_SIZE (as max_concurrent_runs) and _TIMEOUT.
DEFAULT_POOL_SIZE = 4096
DEFAULT_POOL_TIMEOUT = 10.0


class ConnectionSlots:
    """How many provider exchanges may be in flight, and a bounded wait for a free one.

    A counter, as ``RunSlots``, plus a queue of waiters: ``try_take`` is a
    comparison (no await, no lock); ``release`` hands the slot straight to the
    oldest waiter, so waiters are served in order and a newcomer never jumps
    the queue (while anyone waits, no slot is free).
    """

    __slots__ = ("_in_use", "_waiters", "limit", "timeout")

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    def try_take(self) -> bool:
        if self._in_use < self.limit:
            self._in_use += 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a slot, at most ``timeout`` seconds, else raise ``PoolExhausted``."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                await waiter
        except BaseException as exc:
            # Handed a slot in the same instant as the timeout or a cancellation: pass it on.
            # A waiter that gave up stays queued, cancelled; ``release`` skips it.
            if waiter.done() and not waiter.cancelled():
                self.release()
            if isinstance(exc, TimeoutError):
                raise PoolExhausted(
                    "provider connection", "provider_pool_size", self.limit
                ) from None
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot is the waiter's now: in_use stays
                return
        self._in_use -= 1


# The slots of each session new_session made (aiohttp discourages attributes on a session).
_SLOTS: weakref.WeakKeyDictionary[aiohttp.ClientSession, ConnectionSlots] = (
    weakref.WeakKeyDictionary()
)


def slots_of(session: aiohttp.ClientSession) -> ConnectionSlots:
    """The slots bounding ``session``'s exchanges (a session of our own making has them)."""
    slots = _SLOTS.get(session)
    if slots is None:
        slots = _SLOTS[session] = ConnectionSlots(DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT)
    return slots


def new_session(
    pool_size: int = DEFAULT_POOL_SIZE, pool_timeout: float = DEFAULT_POOL_TIMEOUT
) -> aiohttp.ClientSession:
    """The shared session for provider calls (open it inside the running loop).

    At most ``pool_size`` exchanges in flight (``ConnectionSlots``), a call
    waiting at most ``pool_timeout`` seconds for one; the connector itself is
    unlimited, keeps idle connections 30 s and caches DNS answers 5 minutes.
    No redirects (an answer elsewhere is not the provider's), the proxy
    variables honoured as httpx does, and room for long streamed lines.
    aiohttp's ``trust_env`` also reads ``~/.netrc`` and the proxy variables in a
    worker thread on every request (two thread hops per model call), so it is
    on only when a proxy is configured.
    """
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
    )
    session = aiohttp.ClientSession(
        connector=connector,
        trust_env=_proxy_configured(),
        read_bufsize=MAX_LINE,
        max_line_size=MAX_LINE,
        max_field_size=MAX_LINE,
        timeout=aiohttp.ClientTimeout(total=None),
        skip_auto_headers=("User-Agent",),
        headers={"User-Agent": "flowserve"},
    )
    _SLOTS[session] = ConnectionSlots(pool_size, pool_timeout)
    return session


def _proxy_configured() -> bool:
    names = ("https_proxy", "http_proxy", "all_proxy")
    return any(os.environ.get(n) or os.environ.get(n.upper()) for n in names)  # noqa: TID251


class Transport:
    """POSTs to one provider through a shared ``aiohttp.ClientSession``."""

    def __init__(
        self,
        client: aiohttp.ClientSession,
        provider: str,
        *,
        timeout: float = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        secrets: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.slots = slots_of(client)
        self.provider = provider
        self.read_timeout = timeout
        # sock_read: the longest silence while waiting for (more of) the answer.
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, 10.0), sock_read=timeout
        )
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.secrets = tuple(s for s in secrets if s)

    async def post_json(self, url: str, headers: Mapping[str, str], body: Any) -> Any:
        content = msgspec.json.encode(body)
        slots = self.slots
        attempt = 0
        while True:
            if not slots.try_take():
                await slots.wait()
            try:
                try:
                    async with self.client.post(
                        url,
                        headers=_json_headers(headers),
                        data=content,
                        timeout=self.timeout,
                        allow_redirects=False,
                    ) as response:
                        status = response.status
                        retry = status in RETRY_STATUSES and attempt < self.max_retries
                        if retry:
                            retry_after = response.headers.get("retry-after")
                        else:
                            answer = await response.read()
                finally:
                    slots.release()  # before any backoff sleep
            except _EXCHANGE_ERRORS as exc:
                attempt = await self._retry(attempt, None, exc)
                continue
            if retry:
                attempt = await self._retry(attempt, retry_after)
                continue
            if status >= 400:
                raise self._status_error(status, answer)
            try:
                return msgspec.json.decode(answer)
            except (msgspec.DecodeError, UnicodeError) as exc:  # not JSON, or not UTF-8
                raise UpstreamError(f"{self.provider} answered with malformed JSON") from exc

    async def stream_events(
        self, url: str, headers: Mapping[str, str], body: Any
    ) -> AsyncGenerator[tuple[str, str], None]:
        """Yield ``(event, data)`` for each server-sent event of a streamed answer."""
        content = msgspec.json.encode(body)
        request_headers = {**_json_headers(headers), "Accept": "text/event-stream"}
        slots = self.slots
        holding = False  # a slot, held until the whole answer is read (or abandoned)
        attempt = 0
        try:
            while True:
                if not slots.try_take():
                    await slots.wait()
                holding = True
                try:
                    response = await self.client.post(
                        url,
                        headers=request_headers,
                        data=content,
                        timeout=self.timeout,
                        allow_redirects=False,
                    )
                except _EXCHANGE_ERRORS as exc:
                    holding = False
                    slots.release()
                    attempt = await self._retry(attempt, None, exc)
                    continue
                try:
                    if response.status in RETRY_STATUSES and attempt < self.max_retries:
                        retry_after = response.headers.get("retry-after")
                        response.release()
                        holding = False
                        slots.release()
                        attempt = await self._retry(attempt, retry_after)
                        continue
                    if response.status >= 400:
                        try:
                            answer = await response.read()
                        except _EXCHANGE_ERRORS as exc:
                            raise self._transport_error(exc) from exc
                        raise self._status_error(response.status, answer)
                    try:
                        async for event in _parse_sse(self._lines(response)):
                            yield event
                    except _EXCHANGE_ERRORS as exc:
                        raise self._transport_error(exc) from exc
                    return
                finally:
                    response.close()
        finally:
            if holding:
                slots.release()

    async def _lines(self, response: aiohttp.ClientResponse) -> AsyncIterator[str]:
        # Decoded leniently, as browsers read event streams: bytes that are not UTF-8
        # become U+FFFD, and the event's JSON is then reported malformed.
        async for raw in response.content:
            yield raw.decode(errors="replace").rstrip("\r\n")

    async def post_parsed(
        self, url: str, headers: Mapping[str, str], body: Any, parse: Callable[[Any], T]
    ) -> T:
        """``post_json``, then ``parse`` the answer; an answer of the wrong shape is a 502."""
        return self.parse(parse, await self.post_json(url, headers, body))

    def parse(self, parse: Callable[[Any], T], payload: Any) -> T:
        """``parse(payload)``, an answer (or streamed event) of the wrong shape a 502."""
        try:
            return parse(payload)
        except SHAPE_ERRORS as exc:
            raise UpstreamError(f"{self.provider} answered in an unexpected shape: {exc}") from exc

    def decode_event(self, data: str) -> Any:
        """The JSON of one streamed event; garbage is an ``UpstreamError``."""
        try:
            return msgspec.json.decode(data)
        except (msgspec.DecodeError, UnicodeError) as exc:
            raise UpstreamError(f"{self.provider} streamed malformed JSON") from exc

    async def _retry(
        self, attempt: int, retry_after: str | None, exc: BaseException | None = None
    ) -> int:
        """Wait before the next attempt and return its number; with the retries spent,
        raise ``exc`` as an ``UpstreamError`` (callers check statuses themselves)."""
        if attempt >= self.max_retries:
            assert exc is not None
            raise self._transport_error(exc) from exc
        attempt += 1
        await asyncio.sleep(self._delay(attempt, retry_after))
        return attempt

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), _MAX_RETRY_AFTER)
            except ValueError:
                pass
        base: float = self.backoff * (2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def _status_error(self, status: int, body: bytes) -> UpstreamError:
        message = self._redact(_error_message(body))
        return UpstreamError(f"{self.provider} API error (HTTP {status}): {message}")

    def _transport_error(self, exc: BaseException) -> UpstreamError:
        if isinstance(exc, asyncio.TimeoutError):  # aiohttp's ServerTimeoutError is one too
            return UpstreamError(f"{self.provider} API timed out after {self.read_timeout:g}s")
        if isinstance(exc, aiohttp.ClientPayloadError):
            return UpstreamError(
                f"{self.provider} closed the connection before the answer was complete"
            )
        if isinstance(exc, HttpProcessingError):
            return UpstreamError(f"{self.provider} answered with a malformed HTTP message")
        reason = self._redact(str(exc) or type(exc).__name__)
        return UpstreamError(f"{self.provider} API unreachable: {reason}")


def _json_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **headers}


def _error_message(body: bytes) -> str:
    """The provider's own error text: ``{"error": {"message": ...}}`` for both APIs."""
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeError):
        text = body.decode(errors="replace").strip()
        return text[:_MAX_MESSAGE] or "no error message"
    if isinstance(decoded, dict):
        error = decoded.get("error", decoded)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error.get("type")
            if message:
                return str(message)[:_MAX_MESSAGE]
        elif isinstance(error, str):
            return error[:_MAX_MESSAGE]
    return msgspec.json.encode(decoded).decode()[:_MAX_MESSAGE]


async def _parse_sse(lines: AsyncIterator[str]) -> AsyncGenerator[tuple[str, str], None]:
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event or "message", "\n".join(data)
