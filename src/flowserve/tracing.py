"""Optional OpenTelemetry tracing: a span per run, a child span per component.

Enabled only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``)
is set and the ``otel`` extra is installed (``pip install 'flowserve[otel]'``);
the exporter reads the other standard ``OTEL_*`` variables itself (headers,
protocol, service name). Spans are built from the run's outcome after it
ends, with the real start times and durations, so a run pays nothing while it
executes and nothing at all when tracing is off.
"""

from __future__ import annotations

from typing import Any

import structlog

from flowserve.outcome import RunOutcome

log = structlog.get_logger(__name__)

_NS = 1_000_000_000


class RunTracer:
    """Turns run outcomes into OTLP spans (exported in the background, in batches)."""

    def __init__(self, provider: Any) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("flowserve")
        from opentelemetry.trace import Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        # A run called with a W3C traceparent header becomes part of the caller's trace.
        self._propagator = TraceContextTextMapPropagator()

        self._ok = Status(StatusCode.OK)
        self._error = StatusCode.ERROR
        self._status = Status

    def __call__(self, outcome: RunOutcome) -> None:
        start = int(outcome.started_at * _NS)
        parent = (
            self._propagator.extract({"traceparent": outcome.traceparent})
            if outcome.traceparent
            else None
        )
        span = self._tracer.start_span(
            f"run {outcome.flow_name or outcome.flow_id}",
            context=parent,
            start_time=start,
            attributes={
                "flowserve.flow.id": outcome.flow_id,
                "flowserve.flow.name": outcome.flow_name,
                "flowserve.run.id": outcome.run_id,
                "flowserve.session.id": outcome.session_id,
                "flowserve.run.status": outcome.status,
                "flowserve.run.streaming": outcome.streaming,
            },
        )
        if outcome.usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", outcome.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", outcome.usage.output_tokens)
        span.set_status(
            self._ok if outcome.status == "success" else self._status(self._error, outcome.status)
        )
        from opentelemetry import trace

        context = trace.set_span_in_context(span)
        for node in outcome.timings():
            node_start = start + int(node.offset * _NS)
            child = self._tracer.start_span(
                f"component {node.display_name}",
                context=context,
                start_time=node_start,
                attributes={
                    "flowserve.node.id": node.node_id,
                    "flowserve.component.type": node.component,
                },
            )
            child.end(end_time=node_start + int(node.duration * _NS))
        span.end(end_time=start + int(outcome.duration * _NS))

    def shutdown(self) -> None:
        self._provider.shutdown()


def build_tracer(endpoint: str, *, service_version: str) -> RunTracer | None:
    """A tracer exporting to ``endpoint``, or None (logged) when the extra is missing."""
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "tracing_unavailable",
            detail="OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed: "
            "pip install 'flowserve[otel]'",
        )
        return None
    resource = Resource.create({"service.name": "flowserve", "service.version": service_version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing_enabled", endpoint=endpoint)
    return RunTracer(provider)
