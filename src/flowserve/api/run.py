"""``POST /api/v1/run/{flow}``: run a flow, answering JSON or a stream of events.

The stream is Langflow's: ``text/event-stream`` whose events are JSON objects
``{"event": ..., "data": ...}`` each followed by a blank line: ``add_message``
and ``token`` as they happen, then ``end`` with the full result, or ``error``.
Everything that can be wrong with the request (unknown flow, bad tweaks, bad
body) is answered with a 4xx before the stream starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flowserve.api.auth import principal
from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, decode, encode, read_body
from flowserve.engine.types import Message
from flowserve.errors import FlowserveError, Overloaded
from flowserve.files import owner_of
from flowserve.limits import RunSlots
from flowserve.results import HostedRunResponse, RunResponse, hosted_response, message_body
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


_GLOBAL_VAR = GLOBAL_VAR_HEADER.encode()


def header_variables(request: Request) -> dict[str, str]:
    """Langflow's per-request global variables: ``X-LANGFLOW-GLOBAL-VAR-<NAME>`` headers."""
    return _scan_headers(request)[0]


def _scan_headers(request: Request) -> tuple[dict[str, str], str]:
    """The global variables and the ``traceparent`` of a request, in one pass over the
    raw headers (ASGI servers give the names in lower case)."""
    found: dict[str, str] = {}
    traceparent = ""
    for name, value in request.scope["headers"]:
        if name.startswith(_GLOBAL_VAR) and len(name) > len(_GLOBAL_VAR):
            variable = name[len(_GLOBAL_VAR) :].decode("latin-1").upper().replace("-", "_")
            found[variable] = value.decode("latin-1")
        elif name == b"traceparent":
            traceparent = value.decode("latin-1")
    return found, traceparent


async def run_flow(request: Request) -> Response:
    return await serve_run(request, request.path_params["flow"], _as_is)


async def run_flow_by_id(request: Request) -> Response:
    """The hosted docs' endpoint: the same run, answered in their short shape."""
    return await serve_run(request, request.path_params["flow_id"], hosted_response)


def _as_is(response: RunResponse) -> RunResponse:
    return response


async def serve_run(request: Request, ref: str, shape: Callable[[RunResponse], Any]) -> Response:
    """Prepare and run ``ref`` with the request's body, headers and ``stream`` flag;
    a finished run's ``RunResponse`` is answered as ``shape`` makes it (the event
    stream is the same whatever the shape)."""
    runner: Runner = request.app.state.services.runner
    body = await read_body(request)
    run_request = decode(body, RunRequest, empty=_EMPTY_REQUEST)
    variables, traceparent = _scan_headers(request)
    prepared = await runner.prepare(ref, run_request, variables, owner_of(principal(request)))
    if traceparent:
        prepared = dataclasses.replace(prepared, traceparent=traceparent[:128])
    if request.scope["query_string"] and request.query_params.get("stream", "").lower() in _TRUE:
        return answer_stream(request, prepared, Framing())
    return await answer_json(request, prepared, shape)


def _run_slot(request: Request) -> RunSlots:
    slots: RunSlots = request.app.state.run_slots
    try:
        slots.acquire()
    except Overloaded:
        request.app.state.metrics.run_rejected("overloaded")
        raise
    return slots


async def answer_json(
    request: Request, prepared: PreparedRun, shape: Callable[[RunResponse], Any]
) -> Response:
    """Run ``prepared`` in one of this instance's run slots; answer ``shape(result)``."""
    runner: Runner = request.app.state.services.runner
    slots = _run_slot(request)
    try:
        return await _execute_while_connected(runner, prepared, request.receive, shape)
    finally:
        slots.release()


def answer_stream(request: Request, prepared: PreparedRun, framing: Framing) -> Response:
    """Run ``prepared`` in a run slot held until the stream ends, answering its events."""
    runner: Runner = request.app.state.services.runner
    slots = _run_slot(request)
    heartbeat: float = request.app.state.settings.stream_heartbeat
    return _RunStream(runner, prepared, slots, heartbeat, framing)


# A run whose caller hangs up is stopped, as a stream's is, rather than holding its
# run slot and provider connection for up to the run timeout. Watched only once a
# run has lasted this long, so quick runs pay one timer and no task.
DISCONNECT_CHECK_AFTER = 1.0
# nginx's "client closed request": what the access log and metrics record then.
CLIENT_CLOSED = 499


async def _execute_while_connected(
    runner: Runner,
    prepared: PreparedRun,
    receive: Receive,
    shape: Callable[[RunResponse], Any] = _as_is,
) -> Response:
    watching = _Watch(receive)
    try:
        return JSONResponse(shape(await runner.execute(prepared)))
    except asyncio.CancelledError:
        if not watching.hung_up:
            raise  # shutdown, or a timeout of the server's own
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
        log.info("run_abandoned", detail="the client disconnected before the run finished")
        # Nobody is listening; this is for the access log and the metrics.
        body = ErrorBody("client closed the connection", "client_closed", "")
        return JSONResponse(body, status_code=CLIENT_CLOSED)
    finally:
        watching.stop()


# An idle stream sends a bare newline. Langflow's stream is JSON objects separated
# by blank lines; an extra newline is insignificant whitespace to every way
# clients read it: line readers skip blank lines, readers that split on blank
# lines see an empty chunk or JSON with leading whitespace, and SSE parsers
# dispatch nothing for an empty event. An SSE comment (": keepalive") would
# break the split-and-JSON.parse readers (Langflow's own frontend among them).
HEARTBEAT = b"\n"


class Framing:
    """How a stream writes its events: Langflow's ``/run`` stream (JSON objects each
    followed by a blank line, ``end`` carrying the result)."""

    heartbeat = HEARTBEAT

    def frame(self, event: str, data: Any) -> bytes:
        return frame(event, data)

    def closing(self, result: RunResponse) -> list[bytes]:
        return [self.frame("end", EndData(result))]


class _Sink:
    """Where a streamed run's events wait for the response to send them: a list, and a
    future the sender waits on when it is empty (no queue, no task of its own)."""

    __slots__ = ("chunks", "ended", "framing", "last", "waiter")

    def __init__(self, framing: Framing) -> None:
        self.chunks: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.last = time.monotonic()
        self.framing = framing
        self.ended = False

    def emit(self, event: str, data: Any) -> None:
        payload = message_body(data, stream=True) if isinstance(data, Message) else data
        self.put(self.framing.frame(event, payload))

    def put(self, chunk: bytes) -> None:
        self.last = time.monotonic()
        self.chunks.append(chunk)
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self) -> list[bytes]:
        """What was emitted since the last take (waiting for something); ``[]``: the end."""
        while not self.chunks and not self.ended:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        chunks, self.chunks = self.chunks, []
        return chunks


class _Heartbeat:
    """Puts a heartbeat in the sink whenever the stream was quiet ``interval`` seconds:
    a timer re-armed from the last event, not a task per stream."""

    def __init__(self, sink: _Sink, interval: float) -> None:
        self.sink = sink
        self.interval = interval
        self.loop = asyncio.get_running_loop()
        self.handle = self.loop.call_later(interval, self.beat)

    def beat(self) -> None:
        idle = time.monotonic() - self.sink.last
        if idle >= self.interval - 1e-3:
            self.sink.put(self.sink.framing.heartbeat)
            idle = 0.0
        self.handle = self.loop.call_later(self.interval - idle, self.beat)

    def cancel(self) -> None:
        self.handle.cancel()


# X-Accel-Buffering: nginx passes each event on at once even where proxy_buffering is
# on; no-cache keeps other proxies from holding it.
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class _RunStream(Response):
    """A streamed run as a bare ASGI response.

    Events are sent as the run emits them, those that come together in one write.
    Unlike Starlette's ``StreamingResponse`` it starts no task group and no
    disconnect listener per stream: as for plain runs, a run still going after
    ``DISCONNECT_CHECK_AFTER`` gets a watcher that stops it when the client hangs
    up. The run slot is given back however the response ends.
    """

    def __init__(
        self,
        runner: Runner,
        prepared: PreparedRun,
        slots: RunSlots,
        heartbeat: float,
        framing: Framing,
    ) -> None:
        # Not Response.__init__: that would send Content-Length: 0 for no body.
        self.status_code = 200
        self.background = None
        self.raw_headers = _STREAM_HEADERS
        self.runner = runner
        self.prepared = prepared
        self.heartbeat = heartbeat
        self.framing = framing
        self._slots: RunSlots | None = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream(receive, send)
        finally:
            if self._slots is not None:
                self._slots.release()
                self._slots = None

    async def _stream(self, receive: Receive, send: Send) -> None:
        sink = _Sink(self.framing)
        runner, prepared = self.runner, self.prepared

        async def produce() -> RunResponse:
            try:
                return await runner.execute(prepared, sink)
            finally:
                sink.end()

        task = asyncio.create_task(produce())
        beats = _Heartbeat(sink, self.heartbeat) if self.heartbeat > 0 else None
        watching = _Watch(receive)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while chunks := await sink.take():
                await send(_body(chunks))
            await send(_body(self._closing(task), more=False))
        except asyncio.CancelledError:
            if not watching.hung_up:
                raise  # shutdown, or a timeout of the server's own
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()  # the client hung up: nothing more to send, nothing wrong
        finally:
            watching.stop()
            if beats is not None:
                beats.cancel()
            if not task.done():
                # The client went away: stop the run instead of finishing it for nobody.
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _closing(self, task: asyncio.Task[RunResponse]) -> list[bytes]:
        try:
            result = task.result()
        except FlowserveError as exc:
            return [self.framing.frame("error", ErrorData(exc.detail, exc.code))]
        except Exception:
            log.exception("stream_run_failed")
            return [self.framing.frame("error", ErrorData("internal error", "internal_error"))]
        return self.framing.closing(result)


def _body(chunks: list[bytes], *, more: bool = True) -> dict[str, Any]:
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return {"type": "http.response.body", "body": body, "more_body": more}


class _Watch:
    """After ``DISCONNECT_CHECK_AFTER``, a task that cancels the current one when the
    client hangs up; quick responses pay one timer and no task.

    Once the run is over the watcher is not cancelled but told so: the server ends
    its ``receive`` when the response is complete (uvicorn, httpx's ASGI transport)
    and the watcher returns quietly. A cancelled task leaves a CancelledError whose
    traceback holds the task's frames in a cycle: at thousands of runs a second
    those cycles were most of what the garbage collector had to find, in pauses
    of 200 ms. A server that never ends ``receive`` still has it cancelled, later.
    """

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.task = asyncio.current_task()
        self.hung_up = False
        self.finished = False
        self.watcher: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        self.timer = self.loop.call_later(DISCONNECT_CHECK_AFTER, self._start)

    def _start(self) -> None:
        self.watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        if self.finished:
            return  # the response is complete: nobody hung up
        self.hung_up = True
        if self.task is not None:
            self.task.cancel()

    def stop(self) -> None:
        self.timer.cancel()
        self.finished = True
        watcher = self.watcher
        if watcher is not None and not watcher.done():
            self.loop.call_later(DISCONNECT_CHECK_AFTER, watcher.cancel)


def frame(event: str, data: Any) -> bytes:
    return encode(StreamEvent(event, data)) + b"\n\n"


# What a run can answer besides its result (every route that runs a flow).
RUN_ERRORS: Mapping[int, Any] = {
    400: ErrorBody,
    404: ErrorBody,
    413: ErrorBody,
    422: ErrorBody,
    500: ErrorBody,
    502: ErrorBody,
    503: ErrorBody,
    504: ErrorBody,
}

_STREAM_PARAM = Param(
    "stream", "query", "Answer with a stream of events", {"type": "boolean", "default": False}
)

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/run/{flow}",
        run_flow,
        "Run a flow by id or endpoint name (Langflow's simplified run API)",
        scope="execute",
        tag="run",
        anonymous="public_flow",
        request=RunRequest,
        responses={200: RunResponse, **RUN_ERRORS},
        streams={200: "text/event-stream"},
        params=(Param("flow", "path", "Flow UUID or endpoint name", required=True), _STREAM_PARAM),
    ),
    Operation(
        "POST",
        "/api/v1/flows/{flow_id}/run",
        run_flow_by_id,
        "Run a flow, answering the output text, session and duration/tokens (hosted docs' shape)",
        scope="execute",
        tag="run",
        anonymous="public_flow",
        request=RunRequest,
        responses={200: HostedRunResponse, **RUN_ERRORS},
        streams={200: "text/event-stream"},
        params=(
            Param("flow_id", "path", "Flow UUID or endpoint name", required=True),
            _STREAM_PARAM,
        ),
    ),
]
