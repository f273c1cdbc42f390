"""Incoming webhooks and the jobs they start: ``POST /api/v1/webhook/{flow}``, ``/api/v1/jobs``.

A webhook is answered 202 at once with Langflow's body plus our ``job_id``
and a ``Location`` to poll; the flow runs on the job queue. An
``Idempotency-Key`` header makes a repeated request (same flow, same key,
within the result TTL) return the first job instead of starting another.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.auth import check_flows, principal
from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, read_body
from flowserve.bootstrap import Services
from flowserve.errors import BadRequest, Conflict, FlowNotAllowed, JobNotFound
from flowserve.files import owner_of
from flowserve.jobs.webhooks import webhook_job
from flowserve.store.jobs import FINAL, Job

MAX_IDEMPOTENCY_KEY = 255


class WebhookAccepted(msgspec.Struct):
    """Langflow's answer, plus the job to poll."""

    message: str
    status: str
    job_id: str


class JobBody(msgspec.Struct):
    job_id: str
    kind: str
    flow_id: str | None
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    attempts: int
    max_attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    cancel_requested: bool
    # Langflow's run response for a webhook run; the delivery outcome for an event delivery.
    result: Any | None
    error: str | None


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def job_body(job: Job) -> JobBody:
    return JobBody(
        job_id=job.id,
        kind=job.kind,
        flow_id=job.flow_id,
        status=job.status,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        created_at=_iso(job.created_at) or "",
        started_at=_iso(job.started_at),
        finished_at=_iso(job.finished_at),
        cancel_requested=job.cancel_requested,
        result=job.result,
        error=job.error,
    )


def job_location(request: Request, job_id: str) -> str:
    return f"{request.scope.get('root_path', '')}/api/v1/jobs/{job_id}"


async def receive_webhook(request: Request) -> Response:
    services: Services = request.app.state.services
    body = await read_body(request)
    _, record, _ = await services.runner.webhook_graph(request.path_params["flow_id_or_name"])
    if not body:
        # Langflow's answer, word for word.
        raise BadRequest(
            "Request body is empty. You should provide a JSON payload containing the flow ID."
        )
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    job = webhook_job(
        record.id,
        body,
        max_attempts=services.settings.job_max_attempts,
        owner=owner_of(principal(request)),
    )
    stored, created = await services.jobs.queue.enqueue(
        job, idempotency_key=f"webhook:{record.id}:{key}" if key else None
    )
    headers = {"Location": job_location(request, stored.id)}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(
        WebhookAccepted("Task started in the background", "in progress", stored.id),
        status_code=202,
        headers=headers,
    )


async def _job(request: Request) -> tuple[Services, str]:
    return request.app.state.services, request.path_params["job_id"]


async def visible_job(request: Request, services: Services, job_id: str) -> Job:
    job = await services.jobs.queue.get(job_id)
    if job is None:
        raise JobNotFound(f"Job {job_id} not found (unknown, or its result expired)")
    # A key restricted to some flows sees only their jobs (403 as for the flow itself).
    if principal(request).flows is not None:
        if job.flow_id is None:
            raise FlowNotAllowed(f"This API key is not allowed to access job {job_id}")
        await check_flows(request, [job.flow_id])
    return job


async def get_job(request: Request) -> Response:
    services, job_id = await _job(request)
    return JSONResponse(job_body(await visible_job(request, services, job_id)))


async def cancel_job(request: Request) -> Response:
    services, job_id = await _job(request)
    before = await visible_job(request, services, job_id)
    if before.status in FINAL:
        raise Conflict(
            f"Job {job_id} already {before.status}; only queued or running jobs can be cancelled"
        )
    job = await services.jobs.queue.cancel(job_id)
    if job is None:
        raise JobNotFound(f"Job {job_id} not found (unknown, or its result expired)")
    return JSONResponse(job_body(job), status_code=202)


_JOB_PARAM = Param("job_id", "path", "The job id a webhook answered with", required=True)

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/webhook/{flow_id_or_name}",
        receive_webhook,
        "Trigger a flow with a Webhook component; runs in the background",
        scope="execute",
        tag="webhooks",
        responses={
            202: WebhookAccepted,
            400: ErrorBody,
            404: ErrorBody,
            413: ErrorBody,
            415: ErrorBody,
            422: ErrorBody,
            503: ErrorBody,
        },
        params=(
            Param("flow_id_or_name", "path", "Flow UUID or endpoint name", required=True),
            Param(
                "Idempotency-Key",
                "header",
                "Repeat-safe key: the same key for the same flow returns the first job",
            ),
        ),
    ),
    Operation(
        "GET",
        "/api/v1/jobs/{job_id}",
        get_job,
        "A job's state, attempts, timestamps and result or error",
        scope="read",
        tag="webhooks",
        responses={200: JobBody, 404: ErrorBody},
        params=(_JOB_PARAM,),
        filters_flows=True,
    ),
    Operation(
        "DELETE",
        "/api/v1/jobs/{job_id}",
        cancel_job,
        "Cancel a queued job, or ask the worker running it to stop",
        scope="execute",
        tag="webhooks",
        responses={202: JobBody, 404: ErrorBody, 409: ErrorBody},
        params=(_JOB_PARAM,),
        filters_flows=True,
    ),
]
