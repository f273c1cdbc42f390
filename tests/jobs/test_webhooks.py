"""Incoming webhooks: 202 at once, the job's state to poll, idempotency, cancel, retries.

Every test runs on both queues: in-process (the embedded default) and Redis.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.engine.types import json_block
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan
from tests.jobs.support import FAILING, SLOW, WEBHOOK_ECHO, slow_flow, webhook_registry, write_flow

FINAL = {"succeeded", "failed", "cancelled"}


async def wait_final(
    client: httpx.AsyncClient, location: str, within: float = 20
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            response = await client.get(location)
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if job["status"] in FINAL:
                return job
            await asyncio.sleep(0.05)


async def wait_status(
    client: httpx.AsyncClient, location: str, status: str, within: float = 20
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            job: dict[str, Any] = (await client.get(location)).json()
            if job["status"] == status:
                return job
            await asyncio.sleep(0.05)


def chat_text(job: dict[str, Any]) -> str:
    return str(job["result"]["outputs"][0]["outputs"][0]["results"]["message"]["text"])


async def test_webhook_is_accepted_at_once_and_the_flow_gets_the_json_body(
    job_client: httpx.AsyncClient,
) -> None:
    payload = {"event": "push", "commits": [{"id": 1}], "ok": True}
    response = await job_client.post("/api/v1/webhook/webhook-echo", json=payload)
    assert response.status_code == 202
    body = response.json()
    assert body["message"] == "Task started in the background"
    assert body["status"] == "in progress"
    location = response.headers["location"]
    assert location == f"/api/v1/jobs/{body['job_id']}"

    job = await wait_final(job_client, location)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["flow_id"] == WEBHOOK_ECHO
    assert job["started_at"] <= job["finished_at"]
    # Langflow's ChatOutput renders the Webhook's Data as a ```json block.
    assert chat_text(job) == json_block(payload)
    assert job["result"]["session_id"] == WEBHOOK_ECHO
    # Langflow runs a webhook with input_value "".
    assert job["result"]["outputs"][0]["inputs"] == {"input_value": ""}


async def test_an_empty_webhook_body_is_a_400_with_langflows_detail(
    job_client: httpx.AsyncClient,
) -> None:
    response = await job_client.post("/api/v1/webhook/webhook-echo", content=b"")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Request body is empty. You should provide a JSON payload containing the flow ID."
    )
    # The flow is looked up first, as Langflow does: an unknown one is still a 404.
    assert (await job_client.post("/api/v1/webhook/nope", content=b"")).status_code == 404


async def test_plain_text_and_form_bodies_reach_the_flow_as_payload(
    job_client: httpx.AsyncClient,
) -> None:
    text = await job_client.post(
        f"/api/v1/webhook/{WEBHOOK_ECHO}",
        content=b"build 42 passed",
        headers={"content-type": "text/plain"},
    )
    form = await job_client.post("/api/v1/webhook/webhook-echo", data={"a": "1", "b": "two"})
    assert text.status_code == form.status_code == 202
    text_job = await wait_final(job_client, text.headers["location"])
    form_job = await wait_final(job_client, form.headers["location"])
    assert chat_text(text_job) == json_block({"payload": "build 42 passed"})
    assert chat_text(form_job) == json_block({"payload": "a=1&b=two"})


async def test_flow_without_a_webhook_component_is_refused(job_client: httpx.AsyncClient) -> None:
    response = await job_client.post("/api/v1/webhook/prompt-echo", json={"x": 1})
    assert response.status_code == 422
    assert "no Webhook component" in response.json()["detail"]


async def test_unknown_flow_is_404_with_langflows_wording(job_client: httpx.AsyncClient) -> None:
    response = await job_client.post("/api/v1/webhook/nope", json={})
    assert response.status_code == 404
    assert response.json()["detail"] == "Flow identifier nope not found"


async def test_repeated_idempotency_key_returns_the_first_job(
    job_client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "delivery-77"}
    first = await job_client.post("/api/v1/webhook/webhook-echo", json={"n": 1}, headers=headers)
    again = await job_client.post("/api/v1/webhook/webhook-echo", json={"n": 2}, headers=headers)
    other = await job_client.post(
        "/api/v1/webhook/webhook-echo", json={"n": 3}, headers={"Idempotency-Key": "other"}
    )
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert other.json()["job_id"] != first.json()["job_id"]
    job = await wait_final(job_client, again.headers["location"])
    assert chat_text(job) == json_block({"n": 1})


async def test_unknown_job_is_404(job_client: httpx.AsyncClient) -> None:
    response = await job_client.get("/api/v1/jobs/0123abc")
    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"


async def test_a_job_that_keeps_failing_is_retried_then_reported_failed(
    job_client: httpx.AsyncClient,
) -> None:
    response = await job_client.post(f"/api/v1/webhook/{FAILING}", json={})
    job = await wait_final(job_client, response.headers["location"])
    assert job["status"] == "failed"
    assert job["attempts"] == 3  # job_max_attempts in the test settings
    assert "the component blew up" in job["error"]
    assert "Boom-1" in job["error"]
    # A finished job cannot be cancelled.
    cancel = await job_client.delete(response.headers["location"])
    assert cancel.status_code == 409


async def test_failed_jobs_land_in_the_dead_letters(
    job_client: httpx.AsyncClient, job_settings: Settings
) -> None:
    response = await job_client.post(f"/api/v1/webhook/{FAILING}", json={})
    job = await wait_final(job_client, response.headers["location"])
    services = job_client._transport.app.state.services  # type: ignore[attr-defined]
    dead = await services.jobs.queue.dead_letters()
    assert [d.id for d in dead] == [job["job_id"]]


async def test_cancelling_a_running_job_stops_the_flow(
    job_settings: Settings, job_flows: Path
) -> None:
    write_flow(job_flows, "slow.json", slow_flow(60))
    app = create_app(job_settings, registry=webhook_registry())
    async for client in _serve_in_lifespan(app):
        response = await client.post("/api/v1/webhook/slow", json={})
        location = response.headers["location"]
        await wait_status(client, location, "running")
        cancel = await client.delete(location)
        assert cancel.status_code == 202
        assert cancel.json()["cancel_requested"] is True
        job = await wait_final(client, location, within=10)
        assert job["status"] == "cancelled"
        assert job["result"] is None


async def test_cancelling_a_queued_job_means_it_never_runs(job_settings: Settings) -> None:
    app = create_app(job_settings.replace(job_worker=False), registry=webhook_registry())
    async for client in _serve_in_lifespan(app):
        response = await client.post(f"/api/v1/webhook/{SLOW}", json={})
        location = response.headers["location"]
        assert (await client.get(location)).json()["status"] == "queued"
        cancel = await client.delete(location)
        assert cancel.status_code == 202
        assert cancel.json()["status"] == "cancelled"
        # A worker that starts later skips it.
        services = app.state.services
        worker = services.jobs.worker(job_settings, services.runner, services.http)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.5)
        worker.stop()
        await task
        job = (await client.get(location)).json()
        assert job["status"] == "cancelled"
        assert job["attempts"] == 0


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_bad_idempotency_key_is_400(job_client: httpx.AsyncClient, key: str) -> None:
    response = await job_client.post(
        "/api/v1/webhook/webhook-echo", json={}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 400


async def test_finished_jobs_expire_after_the_result_ttl(job_settings: Settings) -> None:
    app = create_app(job_settings.replace(job_result_ttl=1), registry=webhook_registry())
    async for client in _serve_in_lifespan(app):
        response = await client.post("/api/v1/webhook/webhook-echo", json={"a": 1})
        location = response.headers["location"]
        assert (await wait_final(client, location))["status"] == "succeeded"
        async with asyncio.timeout(5):
            while True:
                gone = await client.get(location)
                if gone.status_code != 200:
                    break
                await asyncio.sleep(0.1)
        assert gone.status_code == 404
        assert "expired" in gone.json()["detail"]
