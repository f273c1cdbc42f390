"""``GET /logs`` and ``/logs-stream``: off by default (501, as Langflow), admin only, bounded."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.logs import configure_logging
from tests.api.authed import ADMIN, HELLO, auth_settings, authed_app
from tests.conftest import LiveServer


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Logging configured as ``flowserve serve`` does, into a throwaway stream."""
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BytesIO(), write_through=True))
    configure_logging("info", json=True)
    yield
    monkeypatch.undo()
    configure_logging("info", json=True)


def lines_of(answer: dict[str, str]) -> list[dict[str, Any]]:
    assert all(key.isdigit() for key in answer)
    return [json.loads(text) for text in answer.values()]


async def test_log_routes_are_off_by_default_with_langflows_501(flows_dir: Path) -> None:
    async with authed_app(auth_settings(flows_dir)) as app:
        logs = await app.client.get("/logs", headers=ADMIN)
        stream = await app.client.get("/logs-stream", headers=ADMIN)
    for response in (logs, stream):
        assert response.status_code == 501
        assert response.json()["code"] == "feature_disabled"
        assert response.json()["detail"].startswith("Log retrieval is disabled")


async def test_logs_hold_the_last_lines_for_admins_only(flows_dir: Path, json_logs: None) -> None:
    async with authed_app(auth_settings(flows_dir, log_buffer_size=5)) as app:
        for n in range(8):
            run = await app.client.post(
                f"/api/v1/run/{HELLO}", json={"input_value": f"n{n}"}, headers=ADMIN
            )
            assert run.status_code == 200
        everything = await app.client.get("/logs", params={"lines_before": 100}, headers=ADMIN)
        one = await app.client.get("/logs", params={"lines_before": 1}, headers=ADMIN)
        newest = max(int(k) for k in everything.json())
        after = await app.client.get(
            "/logs", params={"timestamp": newest, "lines_after": 2}, headers=ADMIN
        )
        executor = await app.create_key(name="runner", scopes=["execute", "read", "write"])
        not_admin = {"x-api-key": executor["api_key"]}
        refused = [
            (await app.client.get(path, headers=headers)).status_code
            for path in ("/logs", "/logs-stream")
            for headers in ({}, not_admin)
        ]
        errors = [
            await app.client.get("/logs", params={"lines_after": 1}, headers=ADMIN),
            await app.client.get(
                "/logs", params={"lines_before": 1, "lines_after": 1}, headers=ADMIN
            ),
            await app.client.get("/logs", params={"lines_before": "many"}, headers=ADMIN),
        ]
    assert refused == [401, 403, 401, 403]
    assert everything.status_code == 200
    kept = lines_of(everything.json())
    assert len(kept) == 5  # bounded: the oldest lines are gone
    assert kept[-1]["path"] == f"/api/v1/run/{HELLO}"  # the newest line last
    runs = [line for line in kept if line.get("path") == f"/api/v1/run/{HELLO}"]
    assert runs
    assert all(line["status"] == 200 and line["request_id"] for line in runs)
    assert len(one.json()) == 1
    # From that line on: it, then the next (the GET /logs that read it).
    assert next(int(k) for k in after.json()) == newest
    assert len(after.json()) == 2
    assert [e.status_code for e in errors] == [400, 400, 422]
    assert "Timestamp is required" in errors[0].json()["detail"]
    assert "before and after" in errors[1].json()["detail"]


async def test_logs_stream_follows_new_lines_until_the_client_leaves(
    flows_dir: Path, json_logs: None
) -> None:
    settings = auth_settings(flows_dir, log_buffer_size=200)
    async with (
        LiveServer(create_app(settings)) as live,
        httpx.AsyncClient(base_url=live.url, headers=ADMIN, timeout=30) as http,
    ):
        seen: list[dict[str, Any]] = []
        async with http.stream("GET", "/logs-stream") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            run = await http.post(f"/api/v1/run/{HELLO}", json={"input_value": "followed"})
            assert run.status_code == 200
            async with asyncio.timeout(20):
                async for chunk in stream.aiter_text():
                    for frame in filter(None, (f.strip() for f in chunk.split("\n\n"))):
                        if frame == "keepalive":
                            continue
                        ((stamp, text),) = json.loads(frame).items()
                        assert stamp.isdigit()
                        seen.append(json.loads(text))
                    if any(line.get("path") == f"/api/v1/run/{HELLO}" for line in seen):
                        break
        # Gone: the server ends the stream, and says so in the log it served.
        async with asyncio.timeout(20):
            while True:
                kept = (await http.get("/logs", params={"lines_before": 200})).json()
                if any(line["event"] == "log_stream_closed" for line in lines_of(kept)):
                    break
                await asyncio.sleep(0.1)
    assert any(line.get("request_id") for line in seen)
