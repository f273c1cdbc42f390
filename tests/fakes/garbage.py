"""Provider answers that go wrong on purpose: hangs, garbage bytes, cut streams.

Both fake providers answer with ``faulty(mode, stream, still)`` while a fault
is set. A hang lasts while ``still()`` says the fault is still set (the fakes
clear it on ``reset()``), so no server thread is left waiting at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Literal

from starlette.responses import Response, StreamingResponse

Fault = Literal[
    "hang_before_headers",  # accept the request, never answer
    "hang_after_headers",  # 200 and the start of a body, then nothing
    "not_json",  # 200, JSON content type, an HTML error page
    "bad_utf8",  # 200, JSON with bytes that are not UTF-8
    "truncated",  # 200, the connection drops in the middle of the body
    "cut_short",  # 200, the body ends cleanly in the middle of the answer
    "wrong_shape",  # 200, valid JSON that is not a completion
]
FAULTS: tuple[Fault, ...] = (
    "hang_before_headers",
    "hang_after_headers",
    "not_json",
    "bad_utf8",
    "truncated",
    "cut_short",
    "wrong_shape",
)

_SSE = "text/event-stream"


class Dropped(Exception):
    """Raised inside a streamed body: the server drops the connection mid-answer."""


async def _hold(still: Callable[[], bool]) -> None:
    # The test clears the fault from its own thread: poll, an asyncio.Event cannot cross.
    while still():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def faulty(fault: Fault, stream: bool, still: Callable[[], bool]) -> Response:
    kind = _SSE if stream else "application/json"
    if fault == "hang_before_headers":
        await _hold(still)
        return Response(status_code=500)
    if fault == "hang_after_headers":
        start = b'data: {"choices": [{"index": 0, "delta": {"content": "Hel' if stream else b"{"
        return StreamingResponse(_then_hang(start, still), media_type=kind)
    if fault == "not_json":
        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        return Response(_sse(page) if stream else page, media_type=kind)
    if fault == "bad_utf8":
        if stream:  # SSE text is decoded leniently (U+FFFD), as browsers do: garbage here
            return Response(_sse(b'{"choices": \xff\xfe}'), media_type=kind)
        junk = b'{"choices": [{"index": 0, "message": {"content": "\xff\xfe\xc3"}}]}'
        return Response(junk, media_type=kind)
    if fault == "truncated":
        return StreamingResponse(_then_drop(stream), media_type=kind)
    if fault == "cut_short":
        first = b'{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}'
        return Response(_sse(first) if stream else b'{"choices": [', media_type=kind)
    shape = b'{"status": "ok", "result": [1, 2, 3]}'
    return Response(_sse(shape) + b"data: [DONE]\n\n" if stream else shape, media_type=kind)


def _sse(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


async def _then_hang(start: bytes, still: Callable[[], bool]) -> AsyncIterator[bytes]:
    yield start
    await _hold(still)


async def _then_drop(stream: bool) -> AsyncIterator[bytes]:
    if stream:
        yield _sse(b'{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}')
        yield b'data: {"choices": [{"index": 0, "delta": {"content": "Hel'
    else:
        yield b'{"id": "chatcmpl-fake", "choices": [{"index": 0, "message": {"cont'
    raise Dropped("the provider went away mid-answer")
