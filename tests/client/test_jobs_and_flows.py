"""Webhooks, jobs and flows CRUD, against loopback servers speaking the agreed shapes.

The webhook/job contract: ``POST /api/v1/webhook/{flow}`` answers 202
``{"message", "status", "job_id"}`` with a Location; ``GET /api/v1/jobs/{id}``
answers ``{"job_id", "status", "result", "error"}`` with status
queued/running/succeeded/failed. Flows follow Langflow's ``/api/v1/flows/``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowserve.client import (
    AsyncClient,
    Client,
    FlowInfo,
    FlowNotFound,
    Job,
    JobError,
    JobFailed,
    JobNotFound,
    JobTimeout,
)
from tests.conftest import FLOWS, RESPONSES, LiveServer

RUN_BODY = json.loads((RESPONSES / "hello-world.run.json").read_text())


class JobServer:
    """Jobs that report ``running`` for a few polls, then their final state."""

    def __init__(self, *, polls_before_done: int = 2, outcome: str = "succeeded") -> None:
        self.polls_before_done = polls_before_done
        self.outcome = outcome
        self.jobs: dict[str, dict[str, Any]] = {}
        self.payloads: list[bytes] = []
        self.app = Starlette(
            routes=[
                Route("/api/v1/webhook/{flow}", self.webhook, methods=["POST"]),
                Route("/api/v1/jobs/{job_id}", self.job, methods=["GET"]),
            ]
        )

    async def webhook(self, request: Request) -> Response:
        self.payloads.append(await request.body())
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {"polls": 0}
        return JSONResponse(
            {"message": "Task started in the background", "status": "queued", "job_id": job_id},
            status_code=202,
            headers={"Location": f"/api/v1/jobs/{job_id}"},
        )

    async def job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        job = self.jobs.get(job_id)
        if job is None:
            return JSONResponse(
                {"detail": f"Job {job_id} not found", "code": "job_not_found"}, status_code=404
            )
        job["polls"] += 1
        if job["polls"] <= self.polls_before_done:
            return JSONResponse({"job_id": job_id, "status": "running", "result": None})
        if self.outcome == "failed":
            error = {"detail": "Error running component 'Boom'", "code": "run_failed"}
            return JSONResponse({"job_id": job_id, "status": "failed", "error": error})
        return JSONResponse({"job_id": job_id, "status": "succeeded", "result": RUN_BODY})


async def test_webhook_job_is_waited_for_until_it_succeeds() -> None:
    jobs = JobServer()
    async with (
        LiveServer(jobs.app) as server,
        AsyncClient(server.url, poll_interval=0.01) as client,
    ):
        job = await client.trigger_webhook("webhook-echo", {"order": 42})
        assert job.status == "queued"
        assert job.location == f"/api/v1/jobs/{job.id}"
        done = await client.wait(job)
    assert done.succeeded
    assert done.run_result is not None
    assert done.run_result.output == "Hello, World!"
    assert json.loads(jobs.payloads[0]) == {"order": 42}
    assert jobs.jobs[str(job.id)]["polls"] == 3


async def test_sync_wait_raises_job_failed_with_the_jobs_error() -> None:
    jobs = JobServer(polls_before_done=0, outcome="failed")
    async with LiveServer(jobs.app) as server:

        def call() -> None:
            with Client(server.url, poll_interval=0.01) as client:
                client.wait(client.trigger_webhook("flow", b"raw text body"))

        with pytest.raises(JobFailed) as caught:
            await asyncio.to_thread(call)
    assert caught.value.detail == "Error running component 'Boom'"
    assert caught.value.job.status == "failed"
    assert jobs.payloads == [b"raw text body"]


async def test_wait_gives_up_after_its_timeout() -> None:
    jobs = JobServer(polls_before_done=10_000)
    async with (
        LiveServer(jobs.app) as server,
        AsyncClient(server.url, poll_interval=0.01) as client,
    ):
        job = await client.trigger_webhook("flow", {})
        with pytest.raises(JobTimeout) as caught:
            await client.wait(job, timeout=0.2)
    assert caught.value.job.status == "running"


async def test_unknown_job_raises_job_not_found() -> None:
    jobs = JobServer()
    async with LiveServer(jobs.app) as server, AsyncClient(server.url) as client:
        with pytest.raises(JobNotFound, match="Job nope not found"):
            await client.job("nope")


async def test_langflows_webhook_answer_has_no_job_to_wait_for() -> None:
    async def langflow_webhook(request: Request) -> Response:
        body = {"message": "Task started in the background", "status": "in progress"}
        return JSONResponse(body, status_code=202)

    app = Starlette(routes=[Route("/api/v1/webhook/{flow}", langflow_webhook, methods=["POST"])])
    async with LiveServer(app) as server, AsyncClient(server.url) as client:
        job = await client.trigger_webhook("webhook-echo", {"a": 1})
        assert job == Job(id=None, status="in progress", message="Task started in the background")
        with pytest.raises(JobError, match="no job id"):
            await client.wait(job)


class FlowsServer:
    """Langflow's flows API, in memory: FlowRead bodies, 201 on create, list on GET."""

    def __init__(self) -> None:
        self.flows: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/api/v1/flows/", self.collection, methods=["GET", "POST"]),
                Route("/api/v1/flows/{flow_id}", self.item, methods=["GET", "PATCH", "DELETE"]),
            ]
        )

    def _read(self, flow: dict[str, Any]) -> dict[str, Any]:
        # A few of FlowRead's many keys the client does not model, to be ignored.
        return {**flow, "icon": None, "gradient": None, "is_component": False, "user_id": "u1"}

    async def collection(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse([self._read(f) for f in self.flows.values()])
        body = await request.json()
        flow = {
            "id": body.get("id") or str(uuid.uuid4()),
            "name": body["name"],
            "description": body.get("description"),
            "data": body.get("data"),
            "endpoint_name": body.get("endpoint_name"),
            "webhook": body.get("webhook", False),
            "updated_at": "2026-11-23T09:00:00",
            "folder_id": None,
        }
        self.flows[flow["id"]] = flow
        return JSONResponse(self._read(flow), status_code=201)

    async def item(self, request: Request) -> Response:
        flow_id = request.path_params["flow_id"]
        flow = self.flows.get(flow_id)
        if flow is None:
            return JSONResponse({"detail": "Flow not found"}, status_code=404)
        if request.method == "PATCH":
            flow.update(await request.json())
        elif request.method == "DELETE":
            del self.flows[flow_id]
            return JSONResponse({"message": "Flow deleted successfully"})
        return JSONResponse(self._read(flow))


async def test_flows_crud_speaks_langflows_shapes() -> None:
    store = FlowsServer()
    async with LiveServer(store.app) as server, AsyncClient(server.url) as client:
        created = await client.create_flow(FLOWS / "prompt-echo.json")
        assert isinstance(created, FlowInfo)
        assert created.name == json.loads((FLOWS / "prompt-echo.json").read_text())["name"]
        assert created.endpoint_name == "prompt-echo"
        assert [f.id for f in await client.list_flows()] == [created.id]
        renamed = await client.update_flow(created.id, name="Renamed", description="new")
        assert (renamed.name, renamed.description) == ("Renamed", "new")
        assert (await client.get_flow(created.id)).name == "Renamed"
        await client.delete_flow(created.id)
        with pytest.raises(FlowNotFound) as caught:
            await client.get_flow(created.id)
    # Langflow's 404 carries no code: the status picks NotFound, the path FlowNotFound.
    assert caught.value.detail == "Flow not found"


async def test_sync_client_creates_a_flow_from_a_document() -> None:
    store = FlowsServer()
    document = json.loads((FLOWS / "hello-world.json").read_text())
    async with LiveServer(store.app) as server:

        def call() -> list[FlowInfo]:
            with Client(server.url) as client:
                client.create_flow(document)
                return client.list_flows()

        flows = await asyncio.to_thread(call)
    assert [f.id for f in flows] == [document["id"]]
    assert flows[0].data == document["data"]
