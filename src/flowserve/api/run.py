"""``POST /api/v1/run/{flow}``: run a flow, answering JSON or a stream of events.

The stream is Langflow's: ``text/event-stream`` whose events are JSON objects
``{"event": ..., "data": ...}`` each followed by a blank line: ``add_message``
and ``token`` as they happen, then ``end`` with the full result, or ``error``.
Everything that can be wrong with the request (unknown flow, bad tweaks, bad
body) is answered with a 4xx before the stream starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, decode, encode, read_body
from flowserve.engine.types import Message
from flowserve.errors import FlowserveError
from flowserve.results import RunResponse, message_body
from flowserve.runner import PreparedRun, Runner, RunRequest

log = structlog.get_logger(__name__)

GLOBAL_VAR_HEADER = "x-langflow-global-var-"
_EMPTY_REQUEST = RunRequest()
_TRUE = frozenset({"true", "1", "yes", "on"})


class StreamEvent(msgspec.Struct):
    event: str
    data: Any


class EndData(msgspec.Struct):
    result: RunResponse


class ErrorData(msgspec.Struct):
    error: str
    code: str


def header_variables(request: Request) -> dict[str, str]:
    """Langflow's per-request global variables: ``X-LANGFLOW-GLOBAL-VAR-<NAME>`` headers."""
    found: dict[str, str] = {}
    for name, value in request.headers.items():
        if name.startswith(GLOBAL_VAR_HEADER) and len(name) > len(GLOBAL_VAR_HEADER):
            found[name[len(GLOBAL_VAR_HEADER) :].upper().replace("-", "_")] = value
    return found


async def run_flow(request: Request) -> Response:
    runner: Runner = request.app.state.services.runner
    body = await read_body(request)
    run_request = decode(body, RunRequest, empty=_EMPTY_REQUEST)
    variables = header_variables(request)
    prepared = await runner.prepare(request.path_params["flow"], run_request, variables)
    if request.scope["query_string"] and request.query_params.get("stream", "").lower() in _TRUE:
        return StreamingResponse(
            _event_stream(runner, prepared),
            media_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return JSONResponse(await runner.execute(prepared))


class _QueueSink:
    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def emit(self, event: str, data: Any) -> None:
        payload = message_body(data, stream=True) if isinstance(data, Message) else data
        self.queue.put_nowait(frame(event, payload))


def frame(event: str, data: Any) -> bytes:
    return encode(StreamEvent(event, data)) + b"\n\n"


async def _event_stream(runner: Runner, prepared: PreparedRun) -> AsyncIterator[bytes]:
    sink = _QueueSink()

    async def produce() -> RunResponse:
        try:
            return await runner.execute(prepared, sink)
        finally:
            sink.queue.put_nowait(None)

    task = asyncio.create_task(produce())
    try:
        while (chunk := await sink.queue.get()) is not None:
            yield chunk
        try:
            result = task.result()
        except FlowserveError as exc:
            yield frame("error", ErrorData(exc.detail, exc.code))
            return
        except Exception:
            log.exception("stream_run_failed")
            yield frame("error", ErrorData("internal error", "internal_error"))
            return
        yield frame("end", EndData(result))
    finally:
        if not task.done():
            # The client went away: stop the run instead of finishing it for nobody.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


_ERRORS: Mapping[int, Any] = {
    400: ErrorBody,
    404: ErrorBody,
    413: ErrorBody,
    422: ErrorBody,
    500: ErrorBody,
    502: ErrorBody,
    503: ErrorBody,
    504: ErrorBody,
}

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/run/{flow}",
        run_flow,
        "Run a flow by id or endpoint name (Langflow's simplified run API)",
        scope="execute",
        tag="run",
        request=RunRequest,
        responses={200: RunResponse, **_ERRORS},
        streams={200: "text/event-stream"},
        params=(
            Param("flow", "path", "Flow UUID or endpoint name", required=True),
            Param(
                "stream",
                "query",
                "Answer with a stream of events",
                {"type": "boolean", "default": False},
            ),
        ),
    ),
]
