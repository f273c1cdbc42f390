"""Outgoing event webhooks: subscriptions, Standard Webhooks signatures, retries, order.

The receiver is a real HTTP server on loopback that verifies every signature
with the ``standardwebhooks`` reference library (not our code).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from flowserve.engine.types import json_block
from flowserve.jobs.events import EventPublisher
from flowserve.settings import Settings
from flowserve.store.memory_jobs import MemoryJobQueue, MemorySubscriptionStore
from tests.jobs.support import FAILING, Receiver, ReceiverServer
from tests.jobs.test_webhooks import wait_final

PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
PROMPT_NODES = ["ChatInput-b6UCc", "Prompt-t2oaK", "ChatOutput-yK0AU"]


def make_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver(secret=make_secret())
    async with ReceiverServer(rec) as server:
        yield rec, server.url


async def subscribe(
    client: httpx.AsyncClient, flow: str, url: str, secret: str, events: list[str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": url, "secret": secret}
    if events is not None:
        spec["events"] = events
    response = await client.post(f"/api/v1/flows/{flow}/subscriptions", json=spec)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def delivery_log(
    client: httpx.AsyncClient, flow: str, sid: str, *, expect: int
) -> list[dict[str, Any]]:
    """The delivery log once it holds ``expect`` attempts (it is written after each answer)."""
    async with asyncio.timeout(10):
        while True:
            response = await client.get(f"/api/v1/flows/{flow}/subscriptions/{sid}/deliveries")
            assert response.status_code == 200
            log: list[dict[str, Any]] = response.json()["deliveries"]
            if len(log) >= expect:
                return log
            await asyncio.sleep(0.05)


def events_of(rec: Receiver, run_id: str) -> list[str]:
    return [r.body["event"] for r in rec.unique() if r.body["run_id"] == run_id]


async def test_run_events_are_signed_and_arrive_in_order(
    job_client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    await subscribe(job_client, "prompt-echo", url, rec.secret)
    response = await job_client.post(
        "/api/v1/run/prompt-echo", json={"input_value": "2+2?", "session_id": "s-1"}
    )
    assert response.status_code == 200
    run_id = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["run_id"]
    await rec.wait_for(lambda: "flow_completed" in events_of(rec, run_id))

    assert not rec.rejected
    bodies = [r.body for r in rec.unique() if r.body["run_id"] == run_id]
    assert [b["event"] for b in bodies] == [
        "flow_started",
        *["component_completed"] * 3,
        "flow_completed",
    ]
    assert [b["component_id"] for b in bodies[1:4]] == PROMPT_NODES
    done = bodies[-1]
    assert done["flow_id"] == PROMPT_ECHO
    assert done["session_id"] == "s-1"
    assert done["job_id"] is None
    assert done["error"] is None
    assert done["result"] == {"output": "You are terse. Question: 2+2?"}
    assert set(done) >= {"event", "flow_id", "session_id", "run_id", "result", "error"}
    assert done["timestamp"].endswith("+00:00")


async def test_a_failing_receiver_gets_retries_with_the_same_message_id_in_order(
    job_client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.fail_first = 2
    sub = await subscribe(job_client, PROMPT_ECHO, url, rec.secret)
    response = await job_client.post(f"/api/v1/run/{PROMPT_ECHO}", json={"input_value": "x"})
    run_id = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["run_id"]
    await rec.wait_for(lambda: "flow_completed" in events_of(rec, run_id))

    assert events_of(rec, run_id) == [
        "flow_started",
        *["component_completed"] * 3,
        "flow_completed",
    ]
    assert set(rec.attempts.values()) == {3}
    attempts = await delivery_log(job_client, PROMPT_ECHO, sub["id"], expect=15)
    completed = [a for a in attempts if a["event"] == "flow_completed"]
    # Newest first: delivered on the third attempt after two 500s.
    assert [(a["attempt"], a["status_code"], a["delivered"]) for a in completed] == [
        (3, 204, True),
        (2, 500, False),
        (1, 500, False),
    ]
    assert completed[-1]["error"] == "the subscriber answered HTTP 500"


async def test_webhook_runs_announce_their_job_and_result(
    job_client: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    await subscribe(job_client, "webhook-echo", url, rec.secret, ["flow_completed"])
    response = await job_client.post("/api/v1/webhook/webhook-echo", json={"build": 7})
    job_id = response.json()["job_id"]
    await wait_final(job_client, response.headers["location"])
    await rec.wait_for(lambda: len(rec.unique()) == 1)
    (only,) = rec.unique()
    assert only.body["event"] == "flow_completed"
    assert only.body["job_id"] == job_id
    assert only.body["result"] == {"output": json_block({"build": 7})}


async def test_failed_runs_report_flow_error_for_each_attempt(
    job_client: httpx.AsyncClient, receiver: tuple[Receiver, str], job_settings: Settings
) -> None:
    rec, url = receiver
    await subscribe(job_client, FAILING, url, rec.secret, ["flow_error", "flow_completed"])
    response = await job_client.post(f"/api/v1/webhook/{FAILING}", json={})
    job = await wait_final(job_client, response.headers["location"])
    assert job["status"] == "failed"
    await rec.wait_for(lambda: len(rec.unique()) == job_settings.job_max_attempts)
    assert {r.body["event"] for r in rec.unique()} == {"flow_error"}
    assert all("the component blew up" in r.body["error"] for r in rec.unique())
    assert len({r.body["run_id"] for r in rec.unique()}) == job_settings.job_max_attempts


async def test_private_addresses_are_refused_unless_allowlisted(
    job_client: httpx.AsyncClient, job_settings: Settings
) -> None:
    del job_settings  # the test settings allow 127.0.0.1 only
    for url in ("http://10.0.0.8/hook", "http://169.254.169.254/latest", "http://[::1]:9/x"):
        response = await job_client.post(
            f"/api/v1/flows/{PROMPT_ECHO}/subscriptions", json={"url": url}
        )
        assert response.status_code == 422, url
        assert response.json()["code"] == "unsafe_url"
        assert "FLOWSERVE_WEBHOOK_ALLOWLIST" in response.json()["detail"]
    bad_scheme = await job_client.post(
        f"/api/v1/flows/{PROMPT_ECHO}/subscriptions", json={"url": "file:///etc/passwd"}
    )
    assert bad_scheme.status_code == 422


@pytest.mark.parametrize(
    "url", ["http://example.com:99999/hook", "http://[::1/hook", "http://a.example:port/x"]
)
async def test_malformed_subscription_urls_are_a_422(
    job_client: httpx.AsyncClient, url: str
) -> None:
    response = await job_client.post(
        f"/api/v1/flows/{PROMPT_ECHO}/subscriptions", json={"url": url}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "unsafe_url"
    assert url in response.json()["detail"]


async def test_subscriptions_can_be_listed_changed_rotated_and_deleted(
    job_client: httpx.AsyncClient,
) -> None:
    base = f"/api/v1/flows/{PROMPT_ECHO}/subscriptions"
    created = await job_client.post(
        base, json={"url": "http://127.0.0.1:9/hook", "events": ["flow_error", "flow_started"]}
    )
    assert created.status_code == 201
    sub = created.json()
    assert sub["secret"].startswith("whsec_")
    assert sub["events"] == ["flow_started", "flow_error"]

    listed = (await job_client.get("/api/v1/flows/prompt-echo/subscriptions")).json()
    assert [s["id"] for s in listed["subscriptions"]] == [sub["id"]]
    assert listed["subscriptions"][0]["secret"] is None  # shown only on create/rotate

    changed = await job_client.patch(
        f"{base}/{sub['id']}", json={"enabled": False, "rotate_secret": True}
    )
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False
    assert changed.json()["secret"] not in (None, sub["secret"])

    assert (await job_client.delete(f"{base}/{sub['id']}")).status_code == 204
    assert (await job_client.get(f"{base}/{sub['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"url": "http://127.0.0.1:9/", "events": []}, 422),
        ({"url": "http://127.0.0.1:9/", "events": ["flow_exploded"]}, 422),
        ({"url": "http://127.0.0.1:9/", "secret": "not-a-secret"}, 422),
        ({"url": "http://127.0.0.1:9/", "colour": "red"}, 422),
        ({}, 422),
    ],
)
async def test_bad_subscriptions_are_rejected(
    job_client: httpx.AsyncClient, spec: dict[str, Any], status: int
) -> None:
    response = await job_client.post(f"/api/v1/flows/{PROMPT_ECHO}/subscriptions", json=spec)
    assert response.status_code == status
    assert response.json()["detail"]


async def test_subscriptions_of_an_unknown_flow_are_404(job_client: httpx.AsyncClient) -> None:
    response = await job_client.get("/api/v1/flows/missing/subscriptions")
    assert response.status_code == 404


async def test_runs_of_a_flow_without_subscriptions_queue_nothing(
    job_client: httpx.AsyncClient,
) -> None:
    response = await job_client.post(f"/api/v1/run/{PROMPT_ECHO}", json={"input_value": "x"})
    assert response.status_code == 200
    await asyncio.sleep(0.1)
    services = job_client._transport.app.state.services  # type: ignore[attr-defined]
    assert await services.jobs.queue.claim("probe", 10, 0.05) == []


async def test_subscription_lookups_of_many_flows_do_not_pile_up() -> None:
    # One cached lookup per flow ever run used to stay forever: flow churn grew memory.
    publisher = EventPublisher(
        queue=MemoryJobQueue(result_ttl=60),
        subscriptions=MemorySubscriptionStore(),
        cache_seconds=0.05,
    )
    for n in range(500):
        assert await publisher.subscribers(f"flow-{n}") == []
    await asyncio.sleep(0.1)  # every lookup above has expired
    await publisher.subscribers("one-more")
    assert list(publisher._cache) == ["one-more"]


class _CountingSubscriptions(MemorySubscriptionStore):
    """The embedded store, counting its reads and answering them a little late."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def of_flow(self, flow_id: str) -> list[Any]:
        self.reads += 1
        await asyncio.sleep(0.02)
        return await super().of_flow(flow_id)


async def test_many_runs_at_once_read_a_flows_subscriptions_once() -> None:
    # With thousands of runs in flight, an expired entry must not send them all
    # to the store at the same moment.
    store = _CountingSubscriptions()
    publisher = EventPublisher(
        queue=MemoryJobQueue(result_ttl=60), subscriptions=store, cache_seconds=0.05
    )
    first = await asyncio.gather(*(publisher.subscribers("flow") for _ in range(200)))
    assert first == [[]] * 200
    assert store.reads == 1
    await asyncio.sleep(0.1)  # expired: one refresh, the others answered meanwhile
    again = await asyncio.gather(*(publisher.subscribers("flow") for _ in range(200)))
    assert again == [[]] * 200
    assert store.reads == 2
