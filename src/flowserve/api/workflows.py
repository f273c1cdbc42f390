"""Langflow's v2 workflow API: ``/api/v2/workflows`` (run, background jobs, stop).

``POST`` runs the flow named in the body: ``mode: sync`` answers the finished
run, ``stream`` its events (Server-Sent Events, each ``data:`` Langflow's
``{"event": ..., "data": ...}``), ``background`` queues it on the job queue and
answers the job. ``GET ?job_id=`` reports a job (the run's result once it is
completed), ``POST /stop`` cancels it. Sync and stream runs share the run path
of ``/api/v1/run`` (the Runner, run slots, disconnect handling); jobs are run
by the worker like webhook jobs, and are as durable as the queue.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.auth import check_flows, principal
from flowserve.api.errors import ErrorBody
from flowserve.api.run import (
    RUN_ERRORS,
    EndData,
    Framing,
    answer_json,
    answer_stream,
    header_variables,
)
from flowserve.api.spec import Operation, Param
from flowserve.api.webhooks import visible_job
from flowserve.api.wire import JSONResponse, decode, encode, read_body
from flowserve.bootstrap import Services
from flowserve.errors import BadRequest, InvalidRunInput, JobNotFound, RunFailed, WorkflowFailed
from flowserve.files import owner_of
from flowserve.results import RunResponse
from flowserve.runner import PreparedRun
from flowserve.store.jobs import FINAL, Job
from flowserve.workflows import (
    WORKFLOW,
    WorkflowExecutionResponse,
    WorkflowJobResponse,
    WorkflowRunRequest,
    WorkflowStopRequest,
    WorkflowStopResponse,
    canonical_job_id,
    check_output_ids,
    failed_response,
    job_response,
    run_request,
    status_of,
    unsupported,
    workflow_job,
    workflow_response,
)


async def run_workflow(request: Request) -> Response:
    services: Services = request.app.state.services
    body = decode(await read_body(request), WorkflowRunRequest)
    unsupported(body)
    await check_flows(request, [body.flow_id])
    # Body globals win over the X-LANGFLOW-GLOBAL-VAR-* headers, as in Langflow.
    variables = {**header_variables(request), **body.globals}
    # Everything wrong with the request (flow, tweaks, output_ids) is a 4xx now, in every mode.
    owner = owner_of(principal(request))
    prepared = await services.runner.prepare(body.flow_id, run_request(body), variables, owner)
    check_output_ids(prepared.graph, body.output_ids)
    if body.mode == "background":
        flow_id = prepared.graph.id
        job = workflow_job(
            flow_id, body, variables, max_attempts=services.settings.job_max_attempts, owner=owner
        )
        key = body.idempotency_key
        stored, _ = await services.jobs.queue.enqueue(
            job, idempotency_key=f"workflow:{flow_id}:{key}" if key else None
        )
        return JSONResponse(job_response(stored, request.scope.get("root_path", "")))
    if body.mode == "stream":
        return answer_stream(request, prepared, _WorkflowFraming(prepared, body))
    try:
        return await answer_json(request, prepared, _Shape(prepared, body))
    except RunFailed as exc:
        # Langflow's two tiers: a component failure is a 200 whose status says so.
        return JSONResponse(failed_response(prepared.graph.id, body, exc))


class _Shape:
    """A sync run's ``RunResponse`` as Langflow's ``WorkflowExecutionResponse``."""

    def __init__(self, prepared: PreparedRun, body: WorkflowRunRequest) -> None:
        self.prepared = prepared
        self.body = body

    def __call__(self, response: RunResponse) -> WorkflowExecutionResponse:
        return workflow_response(
            self.prepared.graph,
            response,
            flow_id=self.prepared.graph.id,
            job_id=None,
            inputs=self.prepared.inputs,
            globals_=self.body.globals,
            selected=self.body.output_ids,
        )


class _WorkflowFraming(Framing):
    """Langflow's v2 ``langflow`` stream protocol: SSE frames ``id: N`` + ``data: {event}``;
    each output component's result as an ``output`` event, then ``end``."""

    heartbeat = b": keepalive\n\n"

    def __init__(self, prepared: PreparedRun, body: WorkflowRunRequest) -> None:
        self.shape = _Shape(prepared, body)
        self.seq = 0

    def frame(self, event: str, data: Any) -> bytes:
        chunk = b"id: %d\ndata: %s\n\n" % (self.seq, encode({"event": event, "data": data}))
        self.seq += 1
        return chunk

    def closing(self, result: RunResponse) -> list[bytes]:
        shaped = self.shape(result)
        outputs = [
            self.frame("output", {"component_id": component_id, **msgspec.to_builtins(output)})
            for component_id, output in shaped.outputs.items()
        ]
        return [*outputs, self.frame("end", EndData(result))]


async def _workflow_job(request: Request, services: Services, raw: str | None) -> Job:
    if not raw:
        raise BadRequest("Job ID must be provided (query parameter job_id)")
    job_id = canonical_job_id(raw)
    if job_id is None:
        raise InvalidRunInput("Invalid job_id, must be a UUID")
    job = await visible_job(request, services, job_id)
    if job.kind != WORKFLOW:
        raise JobNotFound(f"Job {job_id} is not a workflow job (type: {job.kind})")
    return job


async def workflow_status(request: Request) -> Response:
    services: Services = request.app.state.services
    job = await _workflow_job(request, services, request.query_params.get("job_id"))
    if job.status == "succeeded":
        # The run's WorkflowExecutionResponse, as the worker stored it.
        return Response(encode(job.result), media_type="application/json")
    if job.status == "failed":
        raise WorkflowFailed(f"Job {job.id} has failed execution: {job.error or 'unknown error'}")
    return JSONResponse(job_response(job, request.scope.get("root_path", "")))


async def stop_workflow(request: Request) -> Response:
    services: Services = request.app.state.services
    body = decode(await read_body(request), WorkflowStopRequest)
    job = await _workflow_job(request, services, body.job_id)
    # Langflow answers 200 with a message for a job that is already over.
    if job.status == "cancelled":
        return JSONResponse(WorkflowStopResponse(job.id, f"Job {job.id} is already cancelled."))
    if job.status in FINAL:
        message = f"Job {job.id} already finished ({status_of(job)})."
        return JSONResponse(WorkflowStopResponse(job.id, message))
    stopped = await services.jobs.queue.cancel(job.id)
    if stopped is None:
        raise JobNotFound(f"Job {job.id} not found (unknown, or its result expired)")
    return JSONResponse(WorkflowStopResponse(job.id, f"Job {job.id} cancelled successfully."))


OPERATIONS = [
    Operation(
        "POST",
        "/api/v2/workflows",
        run_workflow,
        "Run a flow: inline (mode sync), as a stream, or as a background job",
        scope="execute",
        tag="workflows",
        request=WorkflowRunRequest,
        responses={200: WorkflowExecutionResponse | WorkflowJobResponse, **RUN_ERRORS},
        streams={200: "text/event-stream"},
        filters_flows=True,
    ),
    Operation(
        "GET",
        "/api/v2/workflows",
        workflow_status,
        "A background run's status, or its result once completed",
        scope="read",
        tag="workflows",
        responses={
            200: WorkflowExecutionResponse | WorkflowJobResponse,
            400: ErrorBody,
            404: ErrorBody,
            422: ErrorBody,
            500: ErrorBody,
        },
        params=(Param("job_id", "query", "The job id the background run answered with"),),
        filters_flows=True,
    ),
    Operation(
        "POST",
        "/api/v2/workflows/stop",
        stop_workflow,
        "Cancel a background run (queued: at once; running: the worker stops it)",
        scope="execute",
        tag="workflows",
        request=WorkflowStopRequest,
        responses={200: WorkflowStopResponse, 400: ErrorBody, 404: ErrorBody, 422: ErrorBody},
        filters_flows=True,
    ),
]
