"""A lean fake OpenAI-compatible model for concurrency runs: thousands of calls in flight.

``bench/fake_openai.py`` (Starlette on uvicorn) spends most of a core at a few
hundred calls a second, so at 2,000 calls a second against a 1 s model it, not
the server under test, would set the pace. This one is a bare asyncio protocol
(on uvloop when installed): it parses just enough HTTP/1.1 (keep-alive,
``Content-Length`` bodies) and answers from timers, with no task per request.

Every answer is complete ``--latency`` seconds after its request arrived. A
streamed answer (``"stream": true`` in the body) sends ``--tokens`` chunks
evenly over that time, the first at ``latency / tokens``, the last (with the
usage and ``[DONE]``) at ``latency``; so a client that gets its first token
much later than ``latency / tokens`` is buffering. The first token is
``@<ns>``, the wall clock when it was written, like fake_openai.py.

    python bench/fake_model.py --port 8099 --latency 1.0 --tokens 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time

import msgspec

_encoder = msgspec.json.Encoder()
WORDS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}


def _plain_answer() -> bytes:
    body = _encoder.encode(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(WORDS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _chunk(delta: dict[str, str], finish: str | None = None, usage: bool = False) -> bytes:
    event: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        event["usage"] = USAGE
    data = b"data: " + _encoder.encode(event) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
DONE = b"data: [DONE]\n\n"
LAST = b"%x\r\n%s\r\n0\r\n\r\n" % (len(DONE), DONE)


class Model(asyncio.Protocol):
    latency = 1.0
    tokens = 5
    in_flight = 0
    peak = 0
    served = 0

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.plain = _plain_answer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            self._answer(b'"stream":true' in body or b'"stream": true' in body)

    def _answer(self, stream: bool) -> None:
        cls = type(self)
        cls.in_flight += 1
        cls.peak = max(cls.peak, cls.in_flight)
        if not stream:
            self.loop.call_later(cls.latency, self._send_plain)
            return
        if self.transport is not None:
            self.transport.write(STREAM_HEAD)
        step = cls.latency / cls.tokens
        for i in range(cls.tokens):
            self.loop.call_later(step * (i + 1), self._send_token, i)

    def _finish(self) -> None:
        cls = type(self)
        cls.in_flight -= 1
        cls.served += 1

    def _send_plain(self) -> None:
        self._finish()
        if self.transport is not None:
            self.transport.write(self.plain)

    def _send_token(self, i: int) -> None:
        last = i == type(self).tokens - 1
        if i == 0:
            data = _chunk({"role": "assistant", "content": f"@{time.time_ns()}"})
        else:
            data = _chunk({"content": WORDS[i % len(WORDS)]})
        if last:
            data += _chunk({}, "stop", usage=True) + LAST
            self._finish()
        if self.transport is not None:
            self.transport.write(data)


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Model, host, port, backlog=8192, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--tokens", type=int, default=5)
    args = parser.parse_args()
    Model.latency = args.latency
    Model.tokens = max(1, args.tokens)
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
