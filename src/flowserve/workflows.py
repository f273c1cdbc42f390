"""Langflow 1.13's v2 workflow API, on our runner and job queue: wire types and results.

``POST /api/v2/workflows`` runs a flow inline (``mode: sync``), as a stream, or
queues it as a background job (``mode: background``) that ``GET
/api/v2/workflows?job_id=`` reports on and ``POST /api/v2/workflows/stop``
cancels. A sync run and a job run the same way: the body becomes a
``RunRequest`` (every output component reported), prepared and executed by the
``Runner``; the ``RunResponse`` is reshaped into Langflow's
``WorkflowExecutionResponse`` here. A job stores that shape as its result.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from flowserve.engine import Graph, RunOwner
from flowserve.errors import FlowserveError, InvalidRunInput
from flowserve.files import owner_payload
from flowserve.results import RunResponse
from flowserve.runner import MAX_SESSION_ID, RunRequest
from flowserve.store.jobs import Job, JobStatus

WORKFLOW = "workflow"  # the job kind

Mode = Literal["sync", "stream", "background"]
# Langflow's JobStatus values (``timed_out`` and ``suspended`` have no counterpart here).
WorkflowStatus = Literal["queued", "in_progress", "completed", "failed", "cancelled"]
_STATUS: Mapping[JobStatus, WorkflowStatus] = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
STREAM_PROTOCOLS = ("langflow",)
# Langflow's bounds on body globals.
GlobalKey = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
GlobalValue = Annotated[str, msgspec.Meta(max_length=64 * 1024)]


class WorkflowRunRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/v2/workflows`` (Langflow's ``WorkflowRunRequest``)."""

    flow_id: str
    input_value: str = ""
    tweaks: dict[str, Any] = msgspec.field(default_factory=dict)
    session_id: Annotated[str, msgspec.Meta(max_length=MAX_SESSION_ID)] | None = None
    mode: Mode = "sync"
    stream_protocol: str = "langflow"
    expose_graph_state: bool | None = None
    # Accepted for Langflow's schema; a run that sets them is refused (see unsupported()).
    data: dict[str, Any] | None = None
    files: list[str] | None = None
    start_component_id: str | None = None
    stop_component_id: str | None = None
    output_ids: list[str] | None = None
    globals: dict[GlobalKey, GlobalValue] = msgspec.field(default_factory=dict)
    idempotency_key: Annotated[str, msgspec.Meta(max_length=255)] | None = None


class ErrorDetail(msgspec.Struct):
    error: str
    code: str | None = None
    details: dict[str, Any] | None = None


class ComponentOutput(msgspec.Struct):
    type: str
    status: WorkflowStatus
    display_name: str | None
    content: Any
    metadata: dict[str, Any]


class WorkflowOutput(msgspec.Struct):
    """The run's text answer, and why it is (or is not) there."""

    reason: Literal["single", "multiple", "none", "non_string", "failed"]
    text: str | None = None
    source: str | None = None


class WorkflowExecutionResponse(msgspec.Struct, kw_only=True, tag_field="object", tag="response"):
    """A finished run (Langflow's ``WorkflowExecutionResponse``, ``"object": "response"``)."""

    flow_id: str
    session_id: str | None
    job_id: str | None
    created_timestamp: str
    status: WorkflowStatus
    output: WorkflowOutput
    errors: list[ErrorDetail] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    globals: dict[str, str] = msgspec.field(default_factory=dict)
    outputs: dict[str, ComponentOutput] = msgspec.field(default_factory=dict)
    human_request: dict[str, Any] | None = None
    has_errors: bool = False
    # Ours: the run's duration, tokens and run id, as /api/v1/run reports them.
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class WorkflowJobResponse(msgspec.Struct, kw_only=True, tag_field="object", tag="job"):
    """A queued or unfinished background run (Langflow's ``WorkflowJobResponse``)."""

    job_id: str
    flow_id: str
    created_timestamp: str
    status: WorkflowStatus
    links: dict[str, str]
    errors: list[ErrorDetail] = msgspec.field(default_factory=list)
    globals: dict[str, str] = msgspec.field(default_factory=dict)


class WorkflowStopRequest(msgspec.Struct, forbid_unknown_fields=True):
    job_id: str


class WorkflowStopResponse(msgspec.Struct):
    job_id: str
    message: str | None = None


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def status_of(job: Job) -> WorkflowStatus:
    return _STATUS[job.status]


def canonical_job_id(raw: str) -> str | None:
    """``raw`` as a UUID in its usual form; None when it is not one (Langflow's rule)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def unsupported(body: WorkflowRunRequest) -> None:
    """422 for what this server does not run, rather than silently ignoring it."""
    if body.stream_protocol not in STREAM_PROTOCOLS:
        raise InvalidRunInput(
            f"Unknown stream_protocol {body.stream_protocol!r}; available: "
            + ", ".join(STREAM_PROTOCOLS)
        )
    refused = [
        name
        for name in ("data", "files", "start_component_id", "stop_component_id")
        if getattr(body, name) is not None
    ]
    if refused:
        raise InvalidRunInput(
            "This server does not support these v2 fields: "
            + ", ".join(refused)
            + " (runs use the saved flow, whole; tweaks override component fields)"
        )


def run_request(body: WorkflowRunRequest) -> RunRequest:
    """The v1 run body a v2 request amounts to: every output component reported."""
    return RunRequest(
        input_value=body.input_value,
        output_type="any",
        tweaks=body.tweaks or None,
        session_id=body.session_id,
    )


def check_output_ids(graph: Graph, output_ids: list[str] | None) -> None:
    unknown = [i for i in output_ids or () if i not in graph.output_nodes]
    if unknown:
        raise InvalidRunInput(
            f"output_ids not produced by this flow: {unknown}; its outputs: "
            + ", ".join(graph.output_nodes)
        )


def workflow_response(
    graph: Graph,
    response: RunResponse,
    *,
    flow_id: str,
    job_id: str | None,
    inputs: dict[str, Any],
    globals_: Mapping[str, str],
    selected: list[str] | None,
) -> WorkflowExecutionResponse:
    """A finished ``RunResponse`` in Langflow's v2 shape, outputs keyed by component id."""
    outputs: dict[str, ComponentOutput] = {}
    for run_outputs in response.outputs:
        for result in run_outputs.outputs:
            node = graph.nodes.get(result.component_id)
            specs = node.component.outputs if node is not None else ()
            kind = (specs[0].types[0] if specs and specs[0].types else "").lower()
            kind = kind or (node.type.lower() if node is not None else "unknown")
            first = next(iter(result.outputs.values()), None)
            if kind in ("message", "text"):
                content: Any = None if first is None else first.message
            else:
                content = next(iter(result.results.values()), None)
            outputs[result.component_id] = ComponentOutput(
                type=kind,
                status="completed",
                display_name=result.component_display_name,
                content=content,
                metadata={"component_type": node.type if node is not None else None},
            )
    meta = response.metadata
    return WorkflowExecutionResponse(
        flow_id=flow_id,
        session_id=response.session_id,
        job_id=job_id,
        created_timestamp=now_iso(),
        status="completed",
        output=_answer(outputs, selected),
        inputs=inputs,
        globals=dict(globals_),
        outputs=outputs,
        metadata={
            "duration": meta.duration,
            "tokens_used": meta.tokens_used,
            "run_id": meta.run_id,
        },
    )


def failed_response(
    flow_id: str, body: WorkflowRunRequest, error: FlowserveError
) -> WorkflowExecutionResponse:
    """A sync run a component failed, as Langflow answers it (HTTP 200, ``status: failed``)."""
    return WorkflowExecutionResponse(
        flow_id=flow_id,
        session_id=body.session_id or flow_id,
        job_id=None,
        created_timestamp=now_iso(),
        status="failed",
        output=WorkflowOutput("failed"),
        errors=[
            ErrorDetail(
                error.detail,
                "EXECUTION_ERROR",
                {"flow_id": flow_id, "error_type": type(error).__name__, "code": error.code},
            )
        ],
        inputs=body.tweaks,
        globals=dict(body.globals),
        has_errors=True,
    )


def _answer(outputs: Mapping[str, ComponentOutput], selected: list[str] | None) -> WorkflowOutput:
    considered = {k: v for k, v in outputs.items() if not selected or k in selected}
    texts = [
        (component_id, out.content)
        for component_id, out in considered.items()
        if out.type in ("message", "text") and isinstance(out.content, str)
    ]
    if len(texts) == 1:
        return WorkflowOutput("single", texts[0][1], texts[0][0])
    if texts:
        return WorkflowOutput("multiple")
    if any(out.type in ("message", "text") for out in considered.values()):
        return WorkflowOutput("non_string")
    return WorkflowOutput("none")


def job_response(job: Job, root_path: str = "") -> WorkflowJobResponse:
    base = f"{root_path}/api/v2/workflows"
    return WorkflowJobResponse(
        job_id=job.id,
        flow_id=job.flow_id or "",
        created_timestamp=iso(job.created_at),
        status=status_of(job),
        links={
            "status": f"{base}?job_id={job.id}",
            "stop": f"{base}/stop",
        },
        errors=[ErrorDetail(job.error, "JOB_FAILED")]
        if job.status == "failed" and job.error
        else [],
    )


def workflow_job(
    flow_id: str,
    body: WorkflowRunRequest,
    variables: Mapping[str, str],
    *,
    max_attempts: int,
    owner: RunOwner | None = None,
) -> Job:
    """A background run of ``flow_id``; the payload holds all the worker needs to run it."""
    return Job(
        id=str(uuid.uuid4()),
        kind=WORKFLOW,
        flow_id=flow_id,
        max_attempts=max_attempts,
        created_at=time.time(),
        payload={
            "flow_id": flow_id,
            "request": msgspec.to_builtins(run_request(body)),
            "variables": dict(variables),
            "globals": dict(body.globals),
            "output_ids": body.output_ids,
            # The key that submitted: the run reads and saves its files as that owner.
            "owner": owner_payload(owner),
        },
    )
