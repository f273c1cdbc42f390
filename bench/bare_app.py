"""The physical limit: a bare Starlette + msgspec endpoint shaped like flowserve's run API.

It does what any run endpoint must do and nothing more: read the body, decode
the same request Struct, and answer a Langflow-shaped result (Langflow 1.13's
hello-world response, with the input, session, fresh ids and a timestamp filled
in) encoded by msgspec. ``?stream=true`` answers the same body as an
``add_message`` event then an ``end`` event. No flows, no engine, no stores,
no middleware, no logging.

    uvicorn bench.bare_app:app --port 8001
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

TEMPLATE_PATH = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "fixtures"
    / "langflow-1.13-responses"
    / "hello-world.run.json"
)
TEMPLATE = TEMPLATE_PATH.read_bytes()


class RunRequest(msgspec.Struct, kw_only=True):
    input_value: str | None = None
    input_type: Literal["chat", "text", "any"] = "chat"
    output_type: Literal["chat", "text", "any", "debug"] = "chat"
    output_component: str | None = ""
    tweaks: dict[str, Any] | None = None
    session_id: str | None = None


_encoder = msgspec.json.Encoder()
_EMPTY = RunRequest()


def render(flow: str, request: RunRequest) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.json.decode(TEMPLATE)  # the fastest deep copy
    session_id = request.session_id or flow
    run_id = str(uuid.uuid4())
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    body["session_id"] = session_id
    run = body["outputs"][0]
    run["inputs"] = {"input_value": request.input_value or ""}
    message = run["outputs"][0]["results"]["message"]
    for target in (message, message["data"]):
        target.update(session_id=session_id, run_id=run_id, timestamp=now, flow_id=flow)
    message["data"]["id"] = str(uuid.uuid4())
    message["data"]["session_metadata"]["graph_run_id"] = run_id
    return body


async def run_flow(request: Request) -> Response:
    raw = await request.body()
    try:
        run_request = msgspec.json.decode(raw, type=RunRequest) if raw.strip() else _EMPTY
    except msgspec.DecodeError as exc:
        return Response(_encoder.encode({"detail": str(exc)}), 422, media_type="application/json")
    body = render(request.path_params["flow"], run_request)
    if request.query_params.get("stream") == "true":
        return StreamingResponse(_stream(body), media_type="text/event-stream; charset=utf-8")
    return Response(_encoder.encode(body), media_type="application/json")


async def _stream(body: dict[str, Any]) -> AsyncIterator[bytes]:
    message = body["outputs"][0]["outputs"][0]["results"]["message"]
    yield _encoder.encode({"event": "add_message", "data": message}) + b"\n\n"
    yield _encoder.encode({"event": "end", "data": {"result": body}}) + b"\n\n"


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/api/v1/run/{flow}", run_flow, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
)
