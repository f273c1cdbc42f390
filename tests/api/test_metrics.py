"""GET /metrics: Prometheus text with runs, latencies, tokens, HTTP, and the job hooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowserve.app import create_app
from flowserve.engine.types import TokenUsage
from flowserve.metrics import Metrics, RunObservers
from flowserve.outcome import RunOutcome
from flowserve.settings import Settings
from tests.api.authed import ADMIN, auth_settings, authed_app
from tests.conftest import FLOWS, _serve_in_lifespan

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_runs_by_flow_and_status(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.post(f"/api/v1/run/{HELLO}", json={})).status_code == 200
    assert (
        await client.post("/api/v1/run/prompt-echo", json={"tweaks": {"x": 1}})
    ).status_code == 422
    assert (await client.post("/api/v1/run/missing", json={})).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "flowserve_runs_total", flow=HELLO, status="success") == 2
    assert value(found, "flowserve_run_duration_seconds_count", flow=HELLO) == 2
    # Each component of the flow has its latency histogram, labelled by type.
    assert value(found, "flowserve_component_duration_seconds_count", component="TextInput") == 2
    assert value(found, "flowserve_component_duration_seconds_count", component="ChatOutput") == 2
    assert value(found, "flowserve_runs_in_flight") == 0
    # HTTP latency by route template, never by raw path: one series for every flow id.
    route = "/api/v1/run/{flow}"
    count = "flowserve_http_request_duration_seconds_count"
    assert value(found, count, method="POST", route=route, status="200") == 2
    assert value(found, count, method="POST", route=route, status="404") == 1
    assert value(found, count, method="POST", route=route, status="422") == 1
    assert not any("missing" in str(labels) for _, labels in found)


async def test_unknown_paths_share_one_series(client: httpx.AsyncClient) -> None:
    for path in ("/nope/1", "/nope/2", "/wp-admin.php"):
        assert (await client.get(path)).status_code == 404
    found = samples((await client.get("/metrics")).text)
    count = "flowserve_http_request_duration_seconds_count"
    assert value(found, count, method="GET", route="unmatched", status="404") == 3


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    async for client in _serve_in_lifespan(create_app(settings.replace(metrics=False))):
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert "FLOWSERVE_METRICS" in response.json()["detail"]


def test_tokens_and_job_hooks_are_exported() -> None:
    metrics = Metrics()
    metrics.run_finished(
        RunOutcome(
            flow_id="f1",
            flow_name="Agent",
            run_id="r",
            session_id="s",
            status="success",
            started_at=0.0,
            duration=0.5,
            usage=TokenUsage(input_tokens=12, output_tokens=30, total_tokens=42),
        )
    )
    metrics.set_queue_depth("webhooks", 7)
    metrics.job_finished("webhook", "success", 0.2)
    metrics.job_finished("webhook", "retry", 0.1)
    body, content_type = metrics.render()
    found = samples(body.decode())
    assert content_type.startswith("text/plain")
    assert value(found, "flowserve_tokens_total", flow="f1", kind="input") == 12
    assert value(found, "flowserve_tokens_total", flow="f1", kind="output") == 30
    assert value(found, "flowserve_queue_depth", queue="webhooks") == 7
    assert value(found, "flowserve_jobs_total", kind="webhook", outcome="success") == 1
    assert value(found, "flowserve_jobs_total", kind="webhook", outcome="retry") == 1
    assert value(found, "flowserve_job_duration_seconds_count", kind="webhook") == 2


def test_a_failing_observer_does_not_stop_the_others() -> None:
    seen: list[str] = []

    def broken(outcome: RunOutcome) -> None:
        raise RuntimeError("exporter down")

    observers = RunObservers(broken, lambda outcome: seen.append(outcome.run_id))
    observers(RunOutcome("f", "F", "run-1", "s", "success", 0.0, 0.1, None))
    assert seen == ["run-1"]


# ---- Who may scrape: closed by default ------------------------------------------------------

SCRAPE_TOKEN = "scrape-" + "t" * 32


@pytest.fixture(params=["embedded", "postgres"])
def scrape_settings(request: pytest.FixtureRequest, flows_dir: Path) -> Settings:
    """Auth on with a scrape token; keys in SQLite, or in PostgreSQL."""
    settings = auth_settings(flows_dir, metrics_token=SCRAPE_TOKEN)
    if request.param == "embedded":
        return settings
    return settings.replace(database_url=request.getfixturevalue("clean_pg"))


async def test_metrics_need_an_admin_key_or_the_scrape_token(scrape_settings: Settings) -> None:
    async with authed_app(scrape_settings) as authed:
        client = authed.client
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 401
        assert "API key is required" in anonymous.json()["detail"]
        assert "flowserve_" not in anonymous.text
        assert (await client.get("/metrics", headers=ADMIN)).status_code == 200
        bearer = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
        scraped = await client.get("/metrics", headers=bearer)
        assert scraped.status_code == 200
        assert "flowserve_runs_in_flight" in scraped.text
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer scrape-wrong"})
        assert wrong.status_code == 401
        # The scrape token opens /metrics and nothing else.
        assert (await client.get("/api/v1/flows/", headers=bearer)).status_code == 401
        read = (await authed.create_key(name="reader", scopes=["read"]))["api_key"]
        refused = await client.get("/metrics", headers={"x-api-key": read})
        assert refused.status_code == 403
        assert "'admin'" in refused.json()["detail"]
        one_flow = await authed.create_key(name="one", scopes=["admin"], flows=[HELLO])
        restricted = await client.get("/metrics", headers={"x-api-key": one_flow["api_key"]})
        assert restricted.status_code == 403
        for probe in ("/health", "/health_check"):
            assert (await client.get(probe)).status_code == 200


async def test_metrics_can_be_left_public_for_a_guarded_network(flows_dir: Path) -> None:
    async with authed_app(auth_settings(flows_dir, metrics_public=True)) as authed:
        response = await authed.client.get("/metrics")
        assert response.status_code == 200
        assert "flowserve_" in response.text
        assert (await authed.client.get("/api/v1/flows/")).status_code == 401


def _flow_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FLOWS / "hello-world.json").read_text())
    document.update(id=str(uuid.uuid4()), endpoint_name=None)
    document["name"] = "churn-" + document["id"][:8]
    return document


def _series_of(text: str, flow_id: str) -> list[str]:
    return [name for (name, labels) in samples(text) if ("flow", flow_id) in labels]


async def test_deleting_a_flow_drops_its_series(backend_client: httpx.AsyncClient) -> None:
    # Flow churn must not grow memory and the scrape without bound (the soak saw ~1 KB
    # per created-and-deleted flow before): a deleted flow's series go with it.
    document = _flow_document()
    assert (await backend_client.post("/api/v1/flows/", json=document)).status_code == 201
    assert (await backend_client.post(f"/api/v1/run/{document['id']}", json={})).status_code == 200
    assert (await backend_client.post(f"/api/v1/run/{HELLO}", json={})).status_code == 200
    before = (await backend_client.get("/metrics")).text
    assert "flowserve_runs_total" in _series_of(before, document["id"])
    assert (await backend_client.delete(f"/api/v1/flows/{document['id']}")).status_code == 200
    after = (await backend_client.get("/metrics")).text
    assert _series_of(after, document["id"]) == []
    assert "flowserve_runs_total" in _series_of(after, HELLO)  # the others stay


async def test_a_flow_deleted_on_another_instance_drops_its_series_here(
    pg_settings: Settings,
) -> None:
    serve = contextlib.asynccontextmanager(_serve_in_lifespan)
    document = _flow_document()
    async with serve(create_app(pg_settings)) as first, serve(create_app(pg_settings)) as second:
        assert (await first.post("/api/v1/flows/", json=document)).status_code == 201
        assert (await second.post(f"/api/v1/run/{document['id']}", json={})).status_code == 200
        assert _series_of((await second.get("/metrics")).text, document["id"])
        assert (await first.delete(f"/api/v1/flows/{document['id']}")).status_code == 200
        for _ in range(200):  # the announcement travels through Redis pub/sub
            if not _series_of((await second.get("/metrics")).text, document["id"]):
                break
            await asyncio.sleep(0.02)
        assert _series_of((await second.get("/metrics")).text, document["id"]) == []
