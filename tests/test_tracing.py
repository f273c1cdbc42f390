"""OpenTelemetry: with an OTLP endpoint set, a run is a span with a child per component."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.types import Receive, Scope, Send

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import LiveServer, _serve_in_lifespan

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Collector:
    """A minimal OTLP/HTTP receiver: keeps every export request it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/v1/traces":
            self.requests.append(ExportTraceServiceRequest.FromString(body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


async def test_each_run_is_a_span_with_a_child_per_component(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = Collector()
    async with LiveServer(collector) as receiver:  # type: ignore[arg-type]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        async for client in _serve_in_lifespan(create_app(settings)):
            response = await client.post(f"/api/v1/run/{HELLO}", json={"session_id": "s1"})
            assert response.status_code == 200
            joined = await client.post(
                f"/api/v1/run/{HELLO}", json={}, headers={"traceparent": CALLER}
            )
            assert joined.status_code == 200
        # Leaving the lifespan flushed the batch to the collector.
    spans = collector.spans()
    runs = [span for span in spans if span.name.startswith("run ")]
    assert len(runs) == 2
    run = next(span for span in runs if not span.parent_span_id)
    caller = next(span for span in runs if span.parent_span_id)
    # The run called with a traceparent is a child of the caller's span, in its trace.
    assert caller.trace_id.hex() == CALLER.split("-")[1]
    assert caller.parent_span_id.hex() == CALLER.split("-")[2]
    attributes = {a.key: a.value for a in run.attributes}
    assert attributes["flowserve.flow.id"].string_value == HELLO
    assert attributes["flowserve.session.id"].string_value == "s1"
    assert attributes["flowserve.run.status"].string_value == "success"
    children = [span for span in spans if span.parent_span_id == run.span_id]
    assert sorted(span.name for span in children) == [
        "component Chat Output",
        "component Text Input",
    ]
    for child in children:
        assert child.trace_id == run.trace_id
        assert run.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= run.end_time_unix_nano + 1_000_000
