"""Langflow's v2 workflow API over HTTP on PostgreSQL + Redis: sync, stream, background jobs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.api.authed import BOOTSTRAP_KEY, HELLO, PROMPT_ECHO
from tests.conftest import LiveServer, _serve_in_lifespan
from tests.helpers import edge, flow, node
from tests.jobs.support import webhook_registry, write_flow

SLEEPY = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
BROKEN = "8b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
V2 = "/api/v2/workflows"


def sleepy_flow() -> dict[str, Any]:
    """ChatInput -> Sleep (its seconds a tweak) -> ChatOutput."""
    return flow(
        SLEEPY,
        [
            node("ChatInput-1", "ChatInput"),
            node("Sleep-1", "TestSleep", seconds=0.0),
            node("ChatOutput-1", "ChatOutput"),
        ],
        [
            edge("ChatInput-1", "message", "Sleep-1", "input_value"),
            edge("Sleep-1", "output", "ChatOutput-1", "input_value"),
        ],
    )


def broken_flow() -> dict[str, Any]:
    """ChatInput -> Boom (always raises) -> ChatOutput."""
    return flow(
        BROKEN,
        [
            node("ChatInput-1", "ChatInput"),
            node("Boom-1", "TestBoom"),
            node("ChatOutput-1", "ChatOutput"),
        ],
        [
            edge("ChatInput-1", "message", "Boom-1", "input_value"),
            edge("Boom-1", "text", "ChatOutput-1", "input_value"),
        ],
    )


@pytest.fixture
def v2_settings(pg_settings: Settings, flows_dir: Path) -> Settings:
    write_flow(flows_dir, "sleepy.json", sleepy_flow())
    write_flow(flows_dir, "broken.json", broken_flow())
    return pg_settings.replace(
        auth="on",
        api_key=BOOTSTRAP_KEY,
        job_visibility_timeout=1.5,
        job_max_attempts=2,
        job_retry_base=0.05,
        job_retry_max=0.1,
    )


@pytest.fixture
async def api(v2_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _serve_in_lifespan(create_app(v2_settings, registry=webhook_registry())):
        client.headers.update(ADMIN)
        yield client


async def wait_for(
    api: httpx.AsyncClient, job_id: str, statuses: set[str], within: float = 20
) -> httpx.Response:
    async with asyncio.timeout(within):
        while True:
            response = await api.get(V2, params={"job_id": job_id})
            if response.status_code != 200 or response.json()["status"] in statuses:
                return response
            await asyncio.sleep(0.05)


async def test_sync_mode_answers_the_run_in_langflows_v2_shape(api: httpx.AsyncClient) -> None:
    response = await api.post(
        V2, json={"flow_id": PROMPT_ECHO, "input_value": "2+2?", "session_id": "s-1"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["flow_id"] == PROMPT_ECHO
    assert body["session_id"] == "s-1"
    assert body["output"]["reason"] == "single"
    assert body["output"]["text"] == "You are terse. Question: 2+2?"
    (component_id,) = body["outputs"]
    assert body["output"]["source"] == component_id
    out = body["outputs"][component_id]
    assert (out["type"], out["status"]) == ("message", "completed")
    assert out["content"] == "You are terse. Question: 2+2?"
    assert out["metadata"] == {"component_type": "ChatOutput"}
    assert body["errors"] == []
    assert body["has_errors"] is False


async def test_background_submit_status_result_round_trip(api: httpx.AsyncClient) -> None:
    submitted = await api.post(
        V2,
        json={
            "flow_id": SLEEPY,
            "input_value": "later",
            "mode": "background",
            "tweaks": {"Sleep-1": {"seconds": 0.2}},
            "globals": {"TEAM": "core"},
        },
    )
    assert submitted.status_code == 200, submitted.text
    job = submitted.json()
    assert job["object"] == "job"
    assert job["status"] == "queued"
    assert job["flow_id"] == SLEEPY
    assert str(uuid.UUID(job["job_id"])) == job["job_id"]
    assert job["links"]["status"] == f"{V2}?job_id={job['job_id']}"
    done = await wait_for(api, job["job_id"], {"completed", "failed", "cancelled"})
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["object"] == "response"
    assert result["status"] == "completed"
    assert result["job_id"] == job["job_id"]
    assert result["output"] == {"reason": "single", "text": "later", "source": "ChatOutput-1"}
    assert result["globals"] == {"TEAM": "core"}
    assert result["metadata"]["duration"] >= 0.2
    # The same job through the v1 jobs route: the worker ran it once.
    v1 = (await api.get(f"/api/v1/jobs/{job['job_id']}")).json()
    assert (v1["kind"], v1["status"], v1["attempts"]) == ("workflow", "succeeded", 1)
    again = await api.post(f"{V2}/stop", json={"job_id": job["job_id"]})
    assert again.status_code == 200
    assert again.json()["message"] == f"Job {job['job_id']} already finished (completed)."


async def test_stop_cancels_a_running_job(api: httpx.AsyncClient) -> None:
    submitted = await api.post(
        V2,
        json={"flow_id": SLEEPY, "mode": "background", "tweaks": {"Sleep-1": {"seconds": 60}}},
    )
    job_id = submitted.json()["job_id"]
    running = await wait_for(api, job_id, {"in_progress"})
    assert running.json()["status"] == "in_progress"
    stopped = await api.post(f"{V2}/stop", json={"job_id": job_id})
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"job_id": job_id, "message": f"Job {job_id} cancelled successfully."}
    final = await wait_for(api, job_id, {"cancelled", "completed", "failed"})
    assert final.json()["status"] == "cancelled"
    twice = await api.post(f"{V2}/stop", json={"job_id": job_id})
    assert twice.json()["message"] == f"Job {job_id} is already cancelled."


async def test_a_failed_job_answers_500_with_why(api: httpx.AsyncClient) -> None:
    submitted = await api.post(V2, json={"flow_id": BROKEN, "mode": "background"})
    job_id = submitted.json()["job_id"]
    failed = await wait_for(api, job_id, {"completed", "cancelled"})
    assert failed.status_code == 500, failed.text
    assert failed.json()["code"] == "workflow_failed"
    assert f"Job {job_id} has failed execution" in failed.json()["detail"]
    assert "the component blew up" in failed.json()["detail"]
    # A component failure is final: the run is not repeated for it.
    v1 = (await api.get(f"/api/v1/jobs/{job_id}")).json()
    assert (v1["status"], v1["attempts"]) == ("failed", 1)


async def test_a_failed_sync_run_is_a_200_saying_so(api: httpx.AsyncClient) -> None:
    response = await api.post(V2, json={"flow_id": BROKEN, "input_value": "x"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["has_errors"], body["output"]) == (
        "failed",
        True,
        {"reason": "failed", "text": None, "source": None},
    )
    (error,) = body["errors"]
    assert error["code"] == "EXECUTION_ERROR"
    assert "the component blew up" in error["error"]
    assert error["details"]["flow_id"] == BROKEN


async def test_bad_requests_get_a_clear_detail(api: httpx.AsyncClient) -> None:
    unknown = str(uuid.uuid4())
    cases = [
        (api.get(V2), 400, "Job ID must be provided"),
        (api.get(V2, params={"job_id": "nope"}), 422, "must be a UUID"),
        (api.get(V2, params={"job_id": unknown}), 404, unknown),
        (api.post(f"{V2}/stop", json={"job_id": unknown}), 404, unknown),
        (api.post(f"{V2}/stop", json={}), 422, "job_id"),
        (api.post(V2, json={"flow_id": unknown}), 404, unknown),
        (api.post(V2, json={"flow_id": HELLO, "mode": "later"}), 422, "mode"),
        (api.post(V2, json={"flow_id": HELLO, "surprise": 1}), 422, "surprise"),
        (api.post(V2, json={"flow_id": HELLO, "stream_protocol": "agui"}), 422, "agui"),
        (api.post(V2, json={"flow_id": HELLO, "data": {"nodes": []}}), 422, "data"),
        (api.post(V2, json={"flow_id": HELLO, "output_ids": ["X-1"]}), 422, "X-1"),
        (
            api.post(V2, json={"flow_id": HELLO, "mode": "background", "tweaks": {"No": {}}}),
            422,
            "No",
        ),
    ]
    for call, status, needle in cases:
        response = await call
        assert response.status_code == status, response.text
        assert needle in response.json()["detail"], response.text


async def test_restricted_keys_see_only_their_flows_jobs(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v1/api_key/",
        json={"name": "sleepy", "scopes": ["read", "execute"], "flows": [SLEEPY]},
    )
    mine = {"Authorization": f"Bearer {created.json()['api_key']}"}
    reader = await api.post("/api/v1/api_key/", json={"name": "r", "scopes": ["read"]})
    read_only = {"Authorization": f"Bearer {reader.json()['api_key']}"}
    other = (await api.post(V2, json={"flow_id": HELLO, "mode": "background"})).json()
    own = await api.post(V2, json={"flow_id": SLEEPY, "mode": "background"}, headers=mine)
    assert own.status_code == 200, own.text
    denied = [
        await api.post(V2, json={"flow_id": HELLO}, headers=mine),
        await api.get(V2, params={"job_id": other["job_id"]}, headers=mine),
        await api.post(f"{V2}/stop", json={"job_id": other["job_id"]}, headers=mine),
        await api.post(V2, json={"flow_id": HELLO}, headers=read_only),
    ]
    assert [r.status_code for r in denied] == [403, 403, 403, 403]
    seen = await api.get(V2, params={"job_id": own.json()["job_id"]}, headers=read_only)
    assert seen.status_code == 200


async def test_a_queued_job_survives_a_restart_on_redis(v2_settings: Settings) -> None:
    registry = webhook_registry()
    no_worker = create_app(v2_settings.replace(job_worker=False), registry=registry)
    async for client in _serve_in_lifespan(no_worker):
        client.headers.update(ADMIN)
        submitted = await client.post(
            V2, json={"flow_id": HELLO, "mode": "background", "input_value": "x"}
        )
        job_id = submitted.json()["job_id"]
        assert (await client.get(V2, params={"job_id": job_id})).json()["status"] == "queued"
    async for client in _serve_in_lifespan(create_app(v2_settings, registry=registry)):
        client.headers.update(ADMIN)
        done = await wait_for(client, job_id, {"completed", "failed", "cancelled"})
        assert done.status_code == 200, done.text
        assert done.json()["output"]["text"] == "Hello, World!"


async def test_stream_mode_sends_sse_frames_with_outputs_then_end(v2_settings: Settings) -> None:
    app = create_app(v2_settings, registry=webhook_registry())
    async with LiveServer(app) as live, httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{live.url}{V2}",
            json={"flow_id": PROMPT_ECHO, "input_value": "hi", "mode": "stream"},
            headers=ADMIN,
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f.strip()]
    events = []
    for seq, raw in enumerate(frames):
        id_line, data_line = raw.split("\n")
        assert id_line == f"id: {seq}"
        events.append(json.loads(data_line.removeprefix("data: ")))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "add_message"
    assert kinds[-2:] == ["output", "end"]
    assert events[-2]["data"]["content"] == "You are terse. Question: hi"
    assert events[-2]["data"]["component_id"]
