"""A lean HTTP/1.1 client for model calls: pooled keep-alive connections, parsed by httptools.

Model calls sit on every LLM run's critical path, thousands at once. aiohttp
spent about 300 us of CPU per call at 2,000 calls in flight (URL objects,
multidicts, a writer task and timer handles per request); this client spends a
fraction of that: a request is one ``transport.write``, the answer is parsed by
httptools (llhttp, the parser uvicorn serves with) in callbacks on the
connection's protocol, and no task is created per call.

It does only what provider calls need: POST with a body, ``Content-Length``
or chunked answers, keep-alive, TLS, HTTP proxies (``http_proxy``/``https_proxy``/
``all_proxy`` with ``no_proxy``, as httpx reads them: absolute-form requests for
``http://`` targets, a ``CONNECT`` tunnel for ``https://``). No redirects, no
cookies, no compression (it asks for none).

The pool bounds the connections in use (``size``; 0 = no bound): a free slot is
taken without waiting; when all are busy a call waits at most ``wait`` seconds
and then fails with ``PoolFull``, which callers turn into a 503.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

import httptools

# The longest header block or streamed line an answer may send; longer is garbage.
MAX_HEAD = 1 << 20
KEEPALIVE = 30.0  # seconds an idle connection is kept for reuse


class HttpFailure(Exception):
    """An exchange failed; the subclass says how (for the caller's message)."""


class ConnectFailed(HttpFailure):
    pass


class ReadTimedOut(HttpFailure):
    pass


class Incomplete(HttpFailure):
    """The connection closed before the answer was complete."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered  # had any byte of the answer arrived?


class Malformed(HttpFailure):
    pass


class PoolFull(Exception):
    """Every connection slot stayed busy for the whole wait."""

    def __init__(self, size: int, wait: float) -> None:
        super().__init__(f"all {size} connections stayed busy for {wait:g}s")
        self.size = size
        self.wait = wait


# (scheme, host, port, proxy): what a pooled connection may be reused for.
Origin = tuple[str, str, int, tuple[str, int, bytes] | None]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's request goes: the origin to connect to and what to send."""

    scheme: str
    host: str
    port: int
    request_target: bytes  # path?query, or the absolute URL through an http proxy
    host_header: bytes
    proxy: tuple[str, int, bytes] | None  # host, port, Proxy-Authorization value (or b"")

    @property
    def origin(self) -> Origin:
        return (self.scheme, self.host, self.port, self.proxy)


@lru_cache(maxsize=256)
def _target(url: str, proxies: tuple[tuple[str, str], ...]) -> Target:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConnectFailed(f"not an http(s) URL: {url!r}")
    host = parts.hostname
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise ConnectFailed(f"bad port in {url!r}") from exc
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    shown = f"[{host}]" if ":" in host else host
    host_header = (shown if default else f"{shown}:{port}").encode("idna")
    proxy = _proxy_for(scheme, host, dict(proxies))
    request_target = path.encode()
    if proxy is not None and scheme == "http":
        request_target = f"http://{host_header.decode()}{path}".encode()
    return Target(scheme, host, port, request_target, host_header, proxy)


def _proxy_for(scheme: str, host: str, proxies: dict[str, str]) -> tuple[str, int, bytes] | None:
    url = proxies.get(scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not url or bypass(host, proxies):
        return None
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if not parts.hostname:
        return None
    auth = b""
    if parts.username:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        auth = b"Basic " + base64.b64encode(f"{user}:{password}".encode())
    return parts.hostname, parts.port or 80, auth


def proxies_from_environment() -> tuple[tuple[str, str], ...]:
    """The proxy variables (and ``no_proxy``), read once: not per request."""
    found = urllib.request.getproxies_environment()
    return tuple(sorted((k, v) for k, v in found.items() if k in ("http", "https", "all", "no")))


class _Exchange:
    """One request's answer, filled in by the connection's parser callbacks."""

    __slots__ = (
        "body",
        "done",
        "error",
        "head",
        "headers",
        "keep_alive",
        "received",
        "status",
        "timer",
        "waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.head = loop.create_future()  # resolved when the status and headers are in
        self.waiter: asyncio.Future[None] | None = None  # a stream reader waiting for more
        self.done = False
        self.keep_alive = False
        self.received = False
        self.error: HttpFailure | None = None
        self.timer: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: HttpFailure) -> None:
        if self.done or self.error is not None:
            return
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: whoever awaits it sees it; nobody else warns
        self.wake()


class _Connection(asyncio.Protocol):
    """One keep-alive connection to an origin; one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.idle_since = 0.0
        self.last_data = 0.0
        self.head_size = 0
        self.tunnel: asyncio.Future[int] | None = None  # waiting for a CONNECT answer

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel is not None and not self.tunnel.done():
            self.tunnel.set_exception(ConnectFailed("the proxy closed the connection"))
        exchange = self.exchange
        if exchange is not None:
            reason = f": {exc}" if exc else ""
            message = f"connection closed before the answer was complete{reason}"
            exchange.fail(Incomplete(message, answered=exchange.received))

    def data_received(self, data: bytes) -> None:
        self.last_data = self.loop.time()
        if self.tunnel is not None:
            self._tunnel_answer(data)
            return
        exchange = self.exchange
        if exchange is None:  # nothing was asked: the peer is not speaking HTTP to us
            self.close()
            return
        exchange.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            exchange.fail(Malformed(f"malformed HTTP answer: {exc}"))
            self.close()
            return
        if not exchange.head.done():
            self.head_size += len(data)
            if self.head_size > MAX_HEAD:
                exchange.fail(Malformed("the answer's header block is too long"))
                self.close()

    def eof_received(self) -> bool:
        return False

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.exchange is not None:
            self.exchange.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.status = self.parser.get_status_code()
            if not exchange.head.done():
                exchange.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.body.append(body)
            exchange.wake()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.error is None:
            exchange.keep_alive = self.parser.should_keep_alive()
            exchange.done = True
            exchange.wake()

    # ours

    def send(self, data: bytes, timeout: float) -> _Exchange:
        assert self.transport is not None
        exchange = self.exchange = _Exchange(self.loop)
        self.head_size = 0
        self.last_data = now = self.loop.time()
        exchange.timer = self.loop.call_at(now + timeout, _silence_timer, self, exchange, timeout)
        self.transport.write(data)
        return exchange

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _tunnel_answer(self, data: bytes) -> None:
        assert self.tunnel is not None
        if not self.tunnel.done():
            # "HTTP/1.1 200 Connection established\r\n...\r\n\r\n"
            try:
                status = int(data[9:12])
            except ValueError:
                self.tunnel.set_exception(ConnectFailed("the proxy answered CONNECT oddly"))
                return
            if b"\r\n\r\n" not in data:
                self.tunnel.set_exception(ConnectFailed("the proxy's CONNECT answer is split"))
                return
            self.tunnel.set_result(status)


class Answer:
    """A whole answer: status, headers (lower-case names), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.encode())
        return value.decode("latin-1") if value is not None else None


class StreamedAnswer(Answer):
    """An answer whose body is read as it arrives: ``async for chunk in answer.chunks()``."""

    __slots__ = ("_connection", "_exchange")

    def __init__(self, connection: _Connection, exchange: _Exchange) -> None:
        super().__init__(exchange.status, exchange.headers, b"")
        self._connection = connection
        self._exchange = exchange

    async def chunks(self) -> AsyncIterator[bytes]:
        exchange = self._exchange
        while True:
            if exchange.body:
                chunks = exchange.body
                exchange.body = []
                for chunk in chunks:
                    yield chunk
                continue
            if exchange.done:
                return
            if exchange.error is not None:
                raise exchange.error
            await _wait_data(self._connection, exchange)

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


async def _wait_data(connection: _Connection, exchange: _Exchange) -> None:
    """Until more of the answer, its end or a failure (the silence timer's included)."""
    exchange.waiter = connection.loop.create_future()
    try:
        await exchange.waiter
    finally:
        exchange.waiter = None


def _silence_timer(connection: _Connection, exchange: _Exchange, timeout: float) -> None:
    """Fails the exchange after ``timeout`` seconds without data; one timer per exchange,
    moved on (rarely: only when it fires while data still flows) rather than reset per read."""
    if exchange.done or exchange.error is not None or connection.exchange is not exchange:
        return
    due = connection.last_data + timeout
    if due - connection.loop.time() > 1e-3:
        exchange.timer = connection.loop.call_at(due, _silence_timer, connection, exchange, timeout)
        return
    exchange.fail(ReadTimedOut(f"no answer for {timeout:g}s"))
    connection.close()


class Pool:
    """Keep-alive connections to the origins provider calls go to."""

    def __init__(
        self,
        *,
        size: int = 0,
        wait: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        proxies: tuple[tuple[str, str], ...] | None = None,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self.size = size
        self.wait = wait
        self.keepalive = keepalive
        self.proxies = proxies_from_environment() if proxies is None else proxies
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    @property
    def in_use(self) -> int:
        return self._in_use

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in list(self._busy):
            connection.close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        await asyncio.sleep(0)  # let the transports finish closing

    # the public calls

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Answer:
        answer = await self.open(
            url, headers, body, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        try:
            data = await answer.read()
        finally:
            self.release(answer)
        return Answer(answer.status, answer.headers, data)

    async def open(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> StreamedAnswer:
        """Send the request; return once the status and headers are in. The caller reads
        the body (``chunks``/``read``) and must ``release`` the answer."""
        target = _target(url, self.proxies)
        request = _request(target, headers, body)
        await self.take_slot()
        try:
            for fresh in (False, True):
                connection = await self._connection(target, connect_timeout, fresh=fresh)
                reused = connection.idle_since > 0
                exchange = connection.send(request, read_timeout)
                try:
                    await _wait_head(exchange)
                except BaseException as exc:
                    connection.close()
                    self._busy.discard(connection)
                    # A kept-alive connection the server closed as we wrote: once more, new.
                    stale = isinstance(exc, Incomplete) and reused and not exc.answered
                    if stale and not fresh:
                        continue
                    raise
                return StreamedAnswer(connection, exchange)
            raise AssertionError("unreachable")
        except BaseException:
            self.free_slot()
            raise

    def release(self, answer: StreamedAnswer) -> None:
        """Give the answer's connection back: kept when its answer was read whole."""
        connection = answer._connection
        if connection not in self._busy:
            return
        self._busy.discard(connection)
        exchange = answer._exchange
        if exchange.timer is not None:
            exchange.timer.cancel()
        connection.exchange = None
        if exchange.done and exchange.keep_alive and not connection.closed and not self.closed:
            connection.idle_since = connection.loop.time()
            idle = self._idle.setdefault(connection.origin, deque())
            idle.append(connection)
            while idle and connection.idle_since - idle[0].idle_since > self.keepalive:
                idle.popleft().close()
        else:
            connection.close()
        self.free_slot()

    # slots and connections

    async def take_slot(self) -> None:
        """One of the ``size`` slots: at once when one is free, else in arrival order
        within ``wait`` seconds (``PoolFull`` after)."""
        if self.closed:
            raise ConnectFailed("the connection pool is closed")
        if not self.size or self._in_use < self.size:
            self._in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.free_slot()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise PoolFull(self.size, self.wait) from None
            raise
        # free_slot handed its slot on to us: _in_use already counts it.

    def free_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter as it is
                return
        self._in_use -= 1

    async def _connection(
        self, target: Target, connect_within: float, *, fresh: bool
    ) -> _Connection:
        idle = self._idle.get(target.origin)
        if idle and not fresh:
            while idle:
                connection = idle.pop()
                too_old = connection.loop.time() - connection.idle_since > self.keepalive
                if connection.closed or too_old or connection.transport is None:
                    connection.close()
                    continue
                self._busy.add(connection)
                return connection
        connection = await self._connect(target, connect_within)
        self._busy.add(connection)
        return connection

    async def _connect(self, target: Target, within: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = target.scheme == "https"
        context = self._ssl_context() if tls else None
        try:
            async with asyncio.timeout(within):
                if target.proxy is None:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(loop, target.origin),
                        target.host,
                        target.port,
                        ssl=context,
                        server_hostname=target.host if tls else None,
                    )
                    return connection
                return await self._through_proxy(loop, target, context)
        except TimeoutError:
            raise ConnectFailed(f"connecting timed out after {within:g}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc

    async def _through_proxy(
        self,
        loop: asyncio.AbstractEventLoop,
        target: Target,
        context: ssl.SSLContext | None,
    ) -> _Connection:
        assert target.proxy is not None
        host, port, auth = target.proxy
        transport, connection = await loop.create_connection(
            lambda: _Connection(loop, target.origin), host, port
        )
        if context is None:  # http:// through the proxy: absolute-form requests on it
            return connection
        authority = f"{target.host}:{target.port}"
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n".encode()
        if auth:
            head += b"Proxy-Authorization: " + auth + b"\r\n"
        connection.tunnel = loop.create_future()
        transport.write(head + b"\r\n")
        try:
            status = await connection.tunnel
        finally:
            connection.tunnel = None
        if status != 200:
            transport.close()
            raise ConnectFailed(f"the proxy refused the tunnel (HTTP {status})")
        tls_transport = await loop.start_tls(
            transport, connection, context, server_hostname=target.host
        )
        if tls_transport is None:
            raise ConnectFailed("TLS through the proxy failed")
        connection.transport = tls_transport
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


async def _wait_head(exchange: _Exchange) -> None:
    if not exchange.head.done():
        await exchange.head
    exchange.head.result()


def _request(target: Target, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [b"POST ", target.request_target, b" HTTP/1.1\r\nHost: ", target.host_header]
    if target.proxy is not None and target.scheme == "http" and target.proxy[2]:
        lines += [b"\r\nProxy-Authorization: ", target.proxy[2]]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ConnectFailed(f"header {name!r} contains a line break")
        lines += [b"\r\n", name.encode("latin-1"), b": ", value.encode("latin-1")]
    lines += [b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n\r\n", body]
    return b"".join(lines)
