"""The provider connection pool against raw loopback servers: reuse, framing, proxies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from flowserve.providers.http1 import ConnectFailed, Incomplete, Malformed, Pool, ReadTimedOut

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUTS = {"connect_timeout": 2.0, "read_timeout": 2.0}


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback TCP server; yields its port and a list that grows per connection."""
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The head (request line and headers) and body of one request."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def answer(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(extra)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def test_a_connection_is_kept_and_reused_for_the_next_call() -> None:
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            heads.append(head)
            writer.write(answer(b'{"echo": %s}' % body))

    async with raw_server(serve) as (port, connections), Pool() as pool:
        url = f"http://127.0.0.1:{port}/v1/chat/completions?x=1"
        first = await pool.post(url, {"Authorization": "Bearer k"}, b"1", **TIMEOUTS)
        second = await pool.post(url, {}, b"2", **TIMEOUTS)
    assert (first.status, first.body, second.body) == (200, b'{"echo": 1}', b'{"echo": 2}')
    assert len(connections) == 1
    assert heads[0].startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n".encode() in heads[0]
    assert b"Authorization: Bearer k\r\n" in heads[0]
    assert first.header("content-type") == "application/json"


async def test_a_chunked_answer_is_streamed_chunk_by_chunk() -> None:
    release = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with raw_server(serve) as (port, _), Pool() as pool:
        streamed = await pool.open(f"http://127.0.0.1:{port}/", {}, b"", **TIMEOUTS)
        chunks = streamed.chunks()
        assert await anext(chunks) == b"first"  # before the rest was even sent
        release.set()
        assert [c async for c in chunks] == [b"second"]
        pool.release(streamed)
        assert pool.in_use == 0


async def test_a_kept_connection_the_server_closed_is_replaced_transparently() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive by HTTP/1.1's default ...
        await writer.drain()
        # ... and yet closed right after, as servers do with idle connections.

    async with raw_server(serve) as (port, connections), Pool() as pool:
        url = f"http://127.0.0.1:{port}/"
        assert (await pool.post(url, {}, b"", **TIMEOUTS)).status == 200
        await asyncio.sleep(0.05)
        assert (await pool.post(url, {}, b"", **TIMEOUTS)).status == 200
    assert len(connections) == 2


async def test_silence_past_the_read_timeout_fails_the_call_and_frees_the_slot() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(serve) as (port, _), Pool(size=1) as pool:
        with pytest.raises(ReadTimedOut, match=r"no answer for 0\.2s"):
            await pool.post(
                f"http://127.0.0.1:{port}/", {}, b"", connect_timeout=1, read_timeout=0.2
            )
        assert pool.in_use == 0


async def test_an_answer_that_is_not_http_is_malformed() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with raw_server(serve) as (port, _), Pool() as pool:
        with pytest.raises(Malformed):
            await pool.post(f"http://127.0.0.1:{port}/", {}, b"", **TIMEOUTS)


async def test_a_connection_cut_mid_answer_is_incomplete() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial"')
        await writer.drain()

    async with raw_server(serve) as (port, _), Pool() as pool:
        with pytest.raises(Incomplete) as caught:
            await pool.post(f"http://127.0.0.1:{port}/", {}, b"", **TIMEOUTS)
    assert caught.value.answered


async def test_nothing_listening_is_a_connect_failure() -> None:
    async with raw_server(lambda r, w: asyncio.sleep(0)) as (port, _):
        pass  # the port is free again
    async with Pool() as pool:
        with pytest.raises(ConnectFailed):
            await pool.post(f"http://127.0.0.1:{port}/", {}, b"", **TIMEOUTS)
        assert pool.in_use == 0


async def test_header_values_cannot_smuggle_lines() -> None:
    async with Pool() as pool:
        with pytest.raises(ConnectFailed, match="line break"):
            await pool.post("http://127.0.0.1:9/", {"X-A": "1\r\nX-B: 2"}, b"", **TIMEOUTS)
        assert pool.in_use == 0


async def test_an_http_proxy_gets_absolute_form_requests_with_its_credentials() -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        seen.append(head)
        writer.write(answer(b'{"via": "proxy"}'))
        await writer.drain()

    async with raw_server(proxy) as (port, _):
        proxies = (("http", f"http://user:p%40ss@127.0.0.1:{port}"),)
        async with Pool(proxies=proxies) as pool:
            got = await pool.post("http://models.example:8080/v1/x", {}, b"{}", **TIMEOUTS)
    assert got.body == b'{"via": "proxy"}'
    assert seen[0].startswith(b"POST http://models.example:8080/v1/x HTTP/1.1\r\n")
    assert b"Host: models.example:8080\r\n" in seen[0]
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in seen[0]  # user:p@ss


async def test_no_proxy_hosts_are_reached_directly() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b'{"direct": true}'))
        await writer.drain()

    async with raw_server(serve) as (port, _):
        proxies = (("http", "http://127.0.0.1:9"), ("no", "127.0.0.1,localhost"))
        async with Pool(proxies=proxies) as pool:
            got = await pool.post(f"http://127.0.0.1:{port}/", {}, b"", **TIMEOUTS)
    assert got.body == b'{"direct": true}'


async def test_an_https_proxy_refusing_the_tunnel_is_a_connect_failure() -> None:
    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"CONNECT api.example:443 HTTP/1.1\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with (
        raw_server(proxy) as (port, _),
        Pool(proxies=(("https", f"http://127.0.0.1:{port}"),)) as pool,
    ):
        with pytest.raises(ConnectFailed, match="HTTP 403"):
            await pool.post("https://api.example/v1/x", {}, b"", **TIMEOUTS)
        assert pool.in_use == 0
