"""The client's model layer, shared by ``Client`` and ``AsyncClient``.

Typed results built from Langflow's shapes (so they read answers from a real
Langflow server as well as from flowserve), the incremental parser of the run
event stream, and the translation of error answers into exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from flowserve.client._exceptions import APIError, StreamError, error_class

JobStatus = Literal["queued", "running", "succeeded", "failed"]
_FINISHED = frozenset({"succeeded", "failed"})


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """The answer of a run.

    ``output`` is the text of the first output message (what a caller usually
    wants); ``outputs`` is Langflow's raw ``outputs`` list, untouched.
    """

    output: str
    session_id: str
    outputs: list[Any]
    metadata: dict[str, Any]

    @classmethod
    def from_body(cls, body: Any) -> RunResult:
        if not isinstance(body, dict) or not isinstance(body.get("outputs"), list):
            raise StreamError(f"not a run result: {str(body)[:200]}")
        metadata = body.get("metadata")
        return cls(
            output=main_text(body["outputs"]),
            session_id=str(body.get("session_id") or ""),
            outputs=body["outputs"],
            metadata=metadata if isinstance(metadata, dict) else {},
        )


def main_text(outputs: list[Any]) -> str:
    """The text of the first output message in Langflow's ``outputs`` structure."""
    for run_outputs in outputs:
        if not isinstance(run_outputs, dict):
            continue
        for result in run_outputs.get("outputs") or ():
            text = _result_text(result)
            if text is not None:
                return text
    return ""


def _result_text(result: Any) -> str | None:
    if not isinstance(result, dict):
        return None
    for value in (result.get("results") or {}).values():
        if isinstance(value, dict) and isinstance(value.get("text"), str):
            return str(value["text"])
        if isinstance(value, str):
            return value
    for message in result.get("messages") or ():
        if isinstance(message, dict) and isinstance(message.get("message"), str):
            return str(message["message"])
    for value in (result.get("outputs") or {}).values():
        if isinstance(value, dict) and "message" in value:
            return str(value["message"])
    return None


# --- stream events ---------------------------------------------------------------


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Any event of the run stream; ``data`` is the event's raw payload.

    The typed events below are the ones callers act on; others (``log``, ...)
    arrive as plain ``Event``.
    """

    event: str
    data: Any = None


class TokenEvent(Event, frozen=True, kw_only=True):
    """A piece of the answer while a model streams it; the chunks join to the text."""

    chunk: str
    id: str = ""


class MessageEvent(Event, frozen=True, kw_only=True):
    """A chat message was added (``add_message``): the user's, or the flow's answer."""

    text: str
    sender: str = ""
    sender_name: str = ""
    session_id: str = ""
    id: str = ""
    state: str = "complete"


class EndEvent(Event, frozen=True, kw_only=True):
    """The run finished; ``result`` is the same as a non-streaming run's."""

    result: RunResult


class ErrorEvent(Event, frozen=True, kw_only=True):
    """The run failed after the stream started."""

    detail: str
    code: str = ""


StreamEvent = Event | TokenEvent | MessageEvent | EndEvent | ErrorEvent

_event_decoder = msgspec.json.Decoder()


def make_event(raw: Any) -> Event:
    """A typed event from one decoded stream object ``{"event": ..., "data": ...}``."""
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        raise StreamError(f"not a stream event: {str(raw)[:200]}")
    name: str = raw["event"]
    data = raw.get("data")
    body = data if isinstance(data, dict) else {}
    if name == "token":
        return TokenEvent(
            event=name, data=data, chunk=str(body.get("chunk") or ""), id=_s(body, "id")
        )
    if name == "add_message":
        props = body.get("properties")
        state = props.get("state") if isinstance(props, dict) else None
        return MessageEvent(
            event=name,
            data=data,
            text=_s(body, "text"),
            sender=_s(body, "sender"),
            sender_name=_s(body, "sender_name"),
            session_id=_s(body, "session_id"),
            id=_s(body, "id"),
            state=str(state or "complete"),
        )
    if name == "end":
        return EndEvent(event=name, data=data, result=RunResult.from_body(body.get("result")))
    if name == "error":
        detail = body.get("error") or body.get("detail") or body.get("text") or data
        return ErrorEvent(event=name, data=data, detail=_text(detail), code=_s(body, "code"))
    return Event(event=name, data=data)


def _s(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return "" if value is None else str(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


# Server-sent-event lines that are not the JSON payload: comments and fields.
_SSE_FIELDS = (b":", b"event:", b"id:", b"retry:")


class EventParser:
    """Split Langflow's run stream into events as bytes arrive.

    The stream is JSON objects each followed by a blank line; a ``data:``
    prefix (server-sent events) is tolerated. Feed chunks of any size.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        # Normalise line ends on the whole buffer: a CRLF may straddle two chunks.
        self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n")
        events: list[Event] = []
        while True:
            block, sep, rest = self._buffer.partition(b"\n\n")
            if not sep:
                return events
            self._buffer = rest
            event = self._decode(block)
            if event is not None:
                events.append(event)

    def close(self) -> list[Event]:
        block, self._buffer = self._buffer, b""
        event = self._decode(block)
        return [] if event is None else [event]

    @staticmethod
    def _decode(block: bytes) -> Event | None:
        lines = [line.removeprefix(b"data:").strip() for line in block.split(b"\n")]
        payload = b"\n".join(line for line in lines if line and not line.startswith(_SSE_FIELDS))
        if not payload:
            return None  # a comment or keep-alive
        try:
            return make_event(_event_decoder.decode(payload))
        except msgspec.DecodeError as exc:
            raise StreamError(f"malformed event in stream: {payload[:200]!r}") from exc


# --- jobs --------------------------------------------------------------------------


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook run in the background and, once polled, its outcome.

    Langflow answers a webhook with no job id (nothing to poll); flowserve
    gives one, with a ``location`` to poll.
    """

    id: str | None
    status: str
    message: str = ""
    location: str | None = None
    result: Any = None
    error: Any = None

    @property
    def done(self) -> bool:
        return self.status in _FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def error_detail(self) -> str:
        if self.error is None:
            return ""
        if isinstance(self.error, dict):
            return _text(self.error.get("detail") or self.error.get("error") or self.error)
        return _text(self.error)

    @property
    def run_result(self) -> RunResult | None:
        """The run's result when the job succeeded with one in Langflow's shape."""
        result = self.result
        if isinstance(result, dict) and isinstance(result.get("outputs"), list):
            return RunResult.from_body(result)
        return None

    @classmethod
    def from_body(cls, body: Any, *, location: str | None = None) -> Job:
        if not isinstance(body, dict):
            raise StreamError(f"not a job: {str(body)[:200]}")
        job_id = body.get("job_id") or body.get("id")
        return cls(
            id=str(job_id) if job_id else None,
            status=str(body.get("status") or ""),
            message=_s(body, "message"),
            location=location,
            result=body.get("result"),
            error=body.get("error"),
        )


class WorkflowRun(msgspec.Struct, frozen=True, kw_only=True):
    """A v2 workflow run (``/api/v2/workflows``): a background job or a finished run.

    ``status`` is Langflow's: ``queued``, ``in_progress``, ``completed``, ``failed``,
    ``cancelled``; ``output`` the run's text answer once completed; ``body`` the
    whole answer (``WorkflowExecutionResponse`` or ``WorkflowJobResponse``).
    """

    job_id: str | None
    flow_id: str
    status: str
    output: str | None = None
    body: Any = None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_body(cls, body: Any) -> WorkflowRun:
        if not isinstance(body, dict) or "status" not in body:
            raise StreamError(f"not a workflow answer: {str(body)[:200]}")
        answer = body.get("output")
        text = answer.get("text") if isinstance(answer, dict) else None
        return cls(
            job_id=body.get("job_id"),
            flow_id=str(body.get("flow_id") or ""),
            status=str(body["status"]),
            output=text if isinstance(text, str) else None,
            body=body,
        )


# --- flows -------------------------------------------------------------------------


class FlowInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A stored flow as Langflow's ``/api/v1/flows/`` API describes it (``FlowRead``)."""

    id: str
    name: str
    description: str | None = None
    data: dict[str, Any] | None = None
    endpoint_name: str | None = None
    webhook: bool | None = False
    access_type: str | None = None
    mcp_enabled: bool | None = None
    folder_id: str | None = None
    updated_at: str | None = None
    tags: list[str] | None = None
    # The ETag header of a single-flow answer (flowserve): pass it as ``if_match`` to
    # ``update_flow`` so the update applies only if nobody changed the flow meanwhile.
    etag: str | None = None


def flow_from_body(body: Any, etag: str | None = None) -> FlowInfo:
    try:
        flow = msgspec.convert(body, FlowInfo, strict=False)
    except msgspec.ValidationError as exc:
        raise StreamError(f"not a flow: {exc}") from exc
    return msgspec.structs.replace(flow, etag=etag) if etag is not None else flow


def flows_from_body(body: Any) -> list[FlowInfo]:
    # Langflow answers a list, or a page ``{"items": [...], ...}`` when paginated.
    items = body.get("items") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise StreamError(f"not a list of flows: {str(body)[:200]}")
    return [flow_from_body(item) for item in items]


class Snippets(msgspec.Struct, frozen=True, kw_only=True):
    """Code that runs a flow, in several languages, as ``/snippets`` answers it."""

    flow_id: str
    url: str
    input_type: str
    output_type: str
    tweaks: dict[str, dict[str, Any]]
    curl: str
    python_requests: str
    python_client: str
    javascript: str


# --- errors ------------------------------------------------------------------------


def api_error(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    not_found: type[APIError] | None = None,
) -> APIError:
    """The exception for an error answer, with the server's detail and code.

    ``not_found`` is the class for a 404 that names no code (Langflow's), when
    the path says what was missing (a flow, a job).
    """
    body: Any = None
    detail: str
    code: str | None = None
    request_id = headers.get("x-request-id")
    try:
        body = msgspec.json.decode(content) if content else None
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = _text(body["detail"])
        code = body.get("code") if isinstance(body.get("code"), str) else None
        request_id = body.get("request_id") or request_id
    else:
        detail = content.decode("utf-8", "replace").strip()[:1000] or f"HTTP {status}"
    cls = not_found if status == 404 and code is None and not_found else error_class(status, code)
    return cls(
        detail,
        status=status,
        code=code,
        request_id=request_id,
        headers=dict(headers),
        body=body,
    )
