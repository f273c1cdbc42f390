"""Langflow's log retrieval: ``GET /logs`` and ``GET /logs-stream`` (admin keys only).

Both read this process's ``LOG_BUFFER`` (with ``--workers N`` each worker process
keeps its own). Off unless ``FLOWSERVE_LOG_BUFFER_SIZE`` is above 0: then, as in
Langflow, 501 "Log retrieval is disabled". ``/logs`` answers ``{epoch_ms: line}``;
``/logs-stream`` sends each new line as ``{"<epoch_ms>": "<line>"}`` and a blank line,
``keepalive`` after a quiet spell, until the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, encode
from flowserve.errors import BadRequest, FeatureDisabled, Invalid
from flowserve.logs import LOG_BUFFER, LogBuffer

log = structlog.get_logger(__name__)

DEFAULT_LINES = 10  # Langflow's answer when no count is asked for
STREAM_POLL = 0.5  # seconds between looks for new lines
KEEPALIVE_AFTER = 5  # quiet polls before a keepalive


def _buffer(request: Request) -> LogBuffer:
    if not request.app.state.settings.log_buffer_size or not LOG_BUFFER.capacity:
        raise FeatureDisabled(
            "Log retrieval is disabled; set FLOWSERVE_LOG_BUFFER_SIZE to keep log lines"
        )
    return LOG_BUFFER


def _count(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "0")
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"Query parameter {name} must be an integer, not {raw[:40]!r}") from None


async def get_logs(request: Request) -> Response:
    buffer = _buffer(request)
    before, after = _count(request, "lines_before"), _count(request, "lines_after")
    timestamp = _count(request, "timestamp")
    if before > 0 and after > 0:
        raise BadRequest("Cannot request logs before and after the timestamp")
    if timestamp <= 0:
        if after > 0:
            raise BadRequest("Timestamp is required when requesting logs after the timestamp")
        lines = buffer.last(before if before > 0 else DEFAULT_LINES)
    elif after > 0:
        lines = buffer.after(timestamp, after)
    else:
        lines = buffer.before(timestamp, before if before > 0 else DEFAULT_LINES)
    return JSONResponse(lines)


async def stream_logs(request: Request) -> Response:
    buffer = _buffer(request)
    return StreamingResponse(
        _follow(request, buffer),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(request: Request, buffer: LogBuffer) -> AsyncIterator[bytes]:
    seq = buffer.newest()  # from now on, as Langflow's stream
    quiet = 0
    try:
        while not await request.is_disconnected():
            lines = buffer.since(seq)
            if lines:
                quiet = 0
                seq = lines[-1][0]
                yield b"".join(encode({str(ms): text}) + b"\n\n" for _, ms, text in lines)
            else:
                quiet += 1
                if quiet == KEEPALIVE_AFTER:
                    quiet = 0
                    yield b"keepalive\n\n"
            await asyncio.sleep(STREAM_POLL)
    finally:
        log.info("log_stream_closed")


_LINES: dict[str, Any] = {"type": "integer", "default": 0}

OPERATIONS = [
    Operation(
        "GET",
        "/logs",
        get_logs,
        "This instance's last log lines, by timestamp (when FLOWSERVE_LOG_BUFFER_SIZE > 0)",
        scope="admin",
        tag="logs",
        responses={200: dict[int, str], 400: ErrorBody, 422: ErrorBody, 501: ErrorBody},
        params=(
            Param("lines_before", "query", "Lines before the timestamp (or the last)", _LINES),
            Param("lines_after", "query", "Lines from the timestamp on", _LINES),
            Param("timestamp", "query", "Epoch milliseconds to count from", _LINES),
        ),
    ),
    Operation(
        "GET",
        "/logs-stream",
        stream_logs,
        "Follow this instance's log lines as they are written",
        scope="admin",
        tag="logs",
        responses={200: None, 501: ErrorBody},
        streams={200: "text/event-stream"},
    ),
]
