"""Two app instances on one PostgreSQL + Redis: any instance serves any request."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from starlette.applications import Starlette

from flowserve.app import create_app
from flowserve.bootstrap import Services
from flowserve.settings import Settings
from tests.conftest import FLOWS


@asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    app: Starlette = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowserve") as client:
            yield client, app.state.services


def echo_flow(template: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FLOWS / "prompt-echo.json").read_text())
    document.update(id=str(uuid.uuid4()), endpoint_name="shared-echo", name="shared")
    document["data"]["nodes"][1]["data"]["node"]["template"]["template"]["value"] = template
    return document


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    return text


async def until_forgotten(services: Services, flow_id: str) -> None:
    """Wait (bounded) until the instance's cache has dropped the flow: the pub/sub message."""
    async with asyncio.timeout(5):
        while flow_id in services.runner.cache:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.005)


async def test_create_on_a_run_on_b_update_on_a_b_serves_new_version(
    pg_settings: Settings,
) -> None:
    settings = pg_settings.replace(flows_dir="", flow_cache_check=60.0)
    async with instance(settings) as (a, _), instance(settings) as (b, b_services):
        document = echo_flow("v1 {question}")
        assert (await a.post("/api/v1/flows/", json=document)).status_code == 201
        assert answer(await b.post("/api/v1/run/shared-echo", json={"input_value": "x"})) == "v1 x"
        assert document["id"] in b_services.runner.cache

        document["data"]["nodes"][1]["data"]["node"]["template"]["template"]["value"] = (
            "v2 {question}"
        )
        assert (await a.put(f"/api/v1/flows/{document['id']}", json=document)).status_code == 200
        await until_forgotten(b_services, document["id"])
        assert answer(await b.post("/api/v1/run/shared-echo", json={"input_value": "x"})) == "v2 x"

        assert (await a.delete(f"/api/v1/flows/{document['id']}")).status_code == 200
        await until_forgotten(b_services, document["id"])
        assert (await b.post("/api/v1/run/shared-echo", json={})).status_code == 404


async def test_a_missed_announcement_is_caught_by_the_version_check(
    pg_settings: Settings,
) -> None:
    settings = pg_settings.replace(flows_dir="", flow_cache_check=60.0)
    async with instance(settings) as (a, a_services), instance(settings) as (b, b_services):
        document = echo_flow("old {question}")
        await a.post("/api/v1/flows/", json=document)
        assert answer(await b.post("/api/v1/run/shared-echo", json={"input_value": "x"})) == "old x"
        # Change the flow behind every instance's back: no announcement at all.
        stored = await a_services.flows.get(document["id"])
        assert stored is not None
        graph = json.loads(json.dumps(stored.data))
        graph["nodes"][1]["data"]["node"]["template"]["template"]["value"] = "new {question}"
        await a_services.flows.upsert(msgspec.structs.replace(stored, data=graph))
        assert answer(await b.post("/api/v1/run/shared-echo", json={"input_value": "x"})) == "old x"
        assert await b_services.runner.cache.revalidate() == [document["id"]]
        assert answer(await b.post("/api/v1/run/shared-echo", json={"input_value": "x"})) == "new x"


async def test_warm_runs_do_not_read_the_database(pg_settings: Settings) -> None:
    settings = pg_settings.replace(flows_dir="", flow_cache_check=60.0)
    async with instance(settings) as (a, services):
        document = echo_flow("{question}")
        await a.post("/api/v1/flows/", json=document)
        await a.post("/api/v1/run/shared-echo", json={"input_value": "warm"})
        # With the database closed to this instance, warm runs still answer.
        await services.flows.close()
        for _ in range(3):
            response = await a.post("/api/v1/run/shared-echo", json={"input_value": "q"})
            assert answer(response) == "q"


async def test_session_messages_written_through_a_are_visible_through_b(
    pg_settings: Settings,
) -> None:
    async with instance(pg_settings) as (a, _), instance(pg_settings) as (b, _):
        await a.post(
            "/api/v1/run/prompt-echo", json={"input_value": "remember me", "session_id": "x"}
        )
        seen = await b.get("/api/v1/sessions/x")
        assert seen.status_code == 200
        assert seen.json()["messages"][0]["text"] == "remember me"
        assert (await b.delete("/api/v1/sessions/x")).json()["deleted"] == 2
        assert (await a.get("/api/v1/sessions/x")).status_code == 404
