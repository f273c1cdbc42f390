"""Limits a production instance enforces: concurrent runs, run time, CORS, idle streams."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan
from tests.deploy.components import make_registry, through, write_flow
from tests.helpers import Gate, node

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"


@pytest.fixture
def gated(flows_dir: Path) -> str:
    Gate.reset()
    write_flow(flows_dir, through("gated", node("TestGate-b", "TestGate", gate="limits")))
    return "gated"


async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _serve_in_lifespan(create_app(settings, registry=make_registry())):
        yield client


async def entered(name: str = "limits") -> None:
    await Gate.entered.setdefault(name, asyncio.Event()).wait()


async def test_run_beyond_max_concurrent_is_503_with_retry_after(
    settings: Settings, gated: str
) -> None:
    async for client in app_client(settings.replace(max_concurrent_runs=1, overload_retry_after=3)):
        held = asyncio.create_task(client.post(f"/api/v1/run/{gated}", json={"input_value": "a"}))
        await entered()
        refused = await client.post(f"/api/v1/run/{HELLO}", json={})
        Gate.gates["limits"].set()
        first = await held
        after = await client.post(f"/api/v1/run/{HELLO}", json={})
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "3"
    body = refused.json()
    assert body["code"] == "overloaded"
    assert "maximum of 1 concurrent runs" in body["detail"]
    assert first.status_code == 200
    # The slot was given back: the next run is accepted.
    assert after.status_code == 200
    assert 'flowserve_runs_rejected_total{reason="overloaded"} 1.0' in metrics


async def test_bad_requests_do_not_take_a_run_slot(settings: Settings) -> None:
    async for client in app_client(settings.replace(max_concurrent_runs=1)):
        for _ in range(3):
            assert (await client.post("/api/v1/run/nope", json={})).status_code == 404
        assert (await client.post(f"/api/v1/run/{HELLO}", json={})).status_code == 200


async def test_open_stream_holds_its_slot_until_it_ends(live_server: Any, gated: str) -> None:
    async with (
        live_server(registry=make_registry(), max_concurrent_runs=1) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        async with http.stream("POST", f"/api/v1/run/{gated}?stream=true", json={}) as stream:
            lines = stream.aiter_lines()
            await anext(lines)
            busy = await http.post(f"/api/v1/run/{HELLO}", json={})
            Gate.gates["limits"].set()
            rest = [line async for line in lines if line.strip()]
        assert json.loads(rest[-1])["event"] == "end"
        free = await http.post(f"/api/v1/run/{HELLO}", json={})
    assert busy.status_code == 503
    assert free.status_code == 200


async def test_client_leaving_a_stream_frees_its_slot(live_server: Any, gated: str) -> None:
    async with (
        live_server(registry=make_registry(), max_concurrent_runs=1) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        async with http.stream("POST", f"/api/v1/run/{gated}?stream=true", json={}) as stream:
            await anext(stream.aiter_lines())
        # The client hung up while the run was held: the server cancels it and frees the slot.
        for _ in range(200):
            response = await http.post(f"/api/v1/run/{HELLO}", json={})
            if response.status_code == 200:
                break
            await asyncio.sleep(0.02)
    assert response.status_code == 200


async def test_run_longer_than_the_timeout_is_504(settings: Settings, gated: str) -> None:
    async for client in app_client(settings.replace(run_timeout=0.2)):
        response = await client.post(f"/api/v1/run/{gated}", json={})
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 504
    assert response.json()["code"] == "run_timeout"
    assert response.json()["detail"] == "The run did not finish within 0.2 s"
    # Flow files with a non-UUID id are stored under a UUID derived from it.
    assert re.search(
        r'flowserve_runs_total\{flow="[0-9a-f-]{36}",status="run_timeout"\} 1\.0', metrics
    ), metrics


async def test_streamed_run_timeout_ends_with_an_error_event(live_server: Any, gated: str) -> None:
    async with (
        live_server(registry=make_registry(), run_timeout=0.2) as server,
        httpx.AsyncClient() as http,
    ):
        response = await http.post(f"{server.url}/api/v1/run/{gated}?stream=true", json={})
    events = [json.loads(chunk) for chunk in response.text.split("\n\n") if chunk.strip()]
    assert events[-1] == {
        "event": "error",
        "data": {"error": "The run did not finish within 0.2 s", "code": "run_timeout"},
    }


async def test_idle_stream_sends_blank_line_heartbeats_langflow_readers_ignore(
    live_server: Any, gated: str
) -> None:
    async with (
        live_server(registry=make_registry(), stream_heartbeat=0.05) as server,
        httpx.AsyncClient() as http,
        http.stream("POST", f"{server.url}/api/v1/run/{gated}?stream=true", json={}) as stream,
    ):
        raw = b""
        chunks = stream.aiter_raw()
        while raw.count(b"\n") < 6:  # the first event's 2 newlines, then heartbeats
            raw += await anext(chunks)
        Gate.gates["limits"].set()
        async for chunk in chunks:
            raw += chunk
    text = raw.decode()
    assert "\n\n\n" in text, "expected bare-newline heartbeats between events"
    # A Langflow-style reader (split on blank lines, JSON-parse non-empty chunks) sees
    # exactly the events; a line reader skipping blank lines sees the same.
    by_blank = [json.loads(c)["event"] for c in text.split("\n\n") if c.strip()]
    by_line = [json.loads(line)["event"] for line in text.splitlines() if line.strip()]
    assert by_blank == by_line == ["add_message", "add_message", "end"]


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        f"/api/v1/run/{HELLO}",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    response = await client.get("/api/v1/version", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_only_configured_origins(settings: Settings) -> None:
    configured = settings.replace(cors_origins="https://app.example.com, https://b.example.com")
    async for client in app_client(configured):
        preflight = await client.options(
            f"/api/v1/run/{HELLO}",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type",
            },
        )
        allowed = await client.get("/api/v1/version", headers={"Origin": "https://b.example.com"})
        other = await client.get("/api/v1/version", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    assert allowed.headers["access-control-allow-origin"] == "https://b.example.com"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers


async def _slot_freed(http: httpx.AsyncClient) -> str:
    """Once the only run slot is free again (a run answers 200), the metrics page."""
    for _ in range(200):
        response = await http.post(f"/api/v1/run/{HELLO}", json={})
        if response.status_code == 200:
            return (await http.get("/metrics")).text
        await asyncio.sleep(0.02)
    raise AssertionError(f"the run slot stayed taken: {response.status_code} {response.text}")


async def test_client_hanging_up_on_a_plain_run_cancels_it(
    live_server: Any, gated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flowserve.api.run.DISCONNECT_CHECK_AFTER", 0.05)
    server = live_server(registry=make_registry(), max_concurrent_runs=1)
    async with server, httpx.AsyncClient(base_url=server.url) as http:
        held = asyncio.create_task(http.post(f"/api/v1/run/{gated}", json={}))
        await entered()
        held.cancel()  # the caller gives up: its connection closes mid-run
        await asyncio.gather(held, return_exceptions=True)
        # The server stops the run (the gate never opens) and frees the slot.
        metrics = await _slot_freed(http)
    assert not Gate.gates.get("limits", asyncio.Event()).is_set()
    assert re.search(
        r'flowserve_runs_total\{flow="[0-9a-f-]{36}",status="cancelled"\} 1\.0', metrics
    )
    assert re.search(
        r'flowserve_http_request_duration_seconds_count\{.*status="499"\} 1\.0', metrics
    ), metrics


async def test_client_hanging_up_on_a_stream_cancels_its_run(
    live_server: Any, gated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flowserve.api.run.DISCONNECT_CHECK_AFTER", 0.05)
    server = live_server(registry=make_registry(), max_concurrent_runs=1)
    async with server, httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream("POST", f"/api/v1/run/{gated}?stream=true", json={}) as stream:
            assert stream.status_code == 200
            await entered()
        # The stream is closed mid-run: the server stops the run (the gate never opens)
        # and frees the only slot for the next run.
        metrics = await _slot_freed(http)
    assert re.search(
        r'flowserve_runs_total\{flow="[0-9a-f-]{36}",status="cancelled"\} 1\.0', metrics
    ), metrics
