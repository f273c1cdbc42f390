"""The client against the real server: webhook -> job -> wait, and flows CRUD."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from flowserve.client import AsyncClient, FlowChanged, FlowNotFound, InvalidTweaks
from tests.conftest import FLOWS

KEY = "fs_test_client-live-key"


async def test_webhook_job_runs_and_wait_returns_its_result(
    live_server: Any, flows_dir: Path
) -> None:
    shutil.copy(FLOWS / "webhook-echo.json", flows_dir)
    async with (
        live_server(auth="on", api_key=KEY) as server,
        AsyncClient(server.url, api_key=KEY) as client,
    ):
        job = await client.trigger_webhook("webhook-echo", {"build": 42, "ok": True})
        assert job.id
        assert job.status == "in progress"  # Langflow's 202 wording
        assert job.location == f"/api/v1/jobs/{job.id}"
        done = await client.wait(job, timeout=30)
    assert done.succeeded
    text = done.result["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert text.startswith("```json")
    assert json.loads(text.removeprefix("```json").removesuffix("```")) == {
        "build": 42,
        "ok": True,
    }


async def test_flows_crud_and_errors_through_the_client(live_server: Any) -> None:
    document = json.loads((FLOWS / "prompt-echo.json").read_text())
    async with (
        live_server(auth="on", api_key=KEY, flows_dir="") as server,
        AsyncClient(server.url, api_key=KEY) as client,
    ):
        with pytest.raises(FlowNotFound):
            await client.run_flow("prompt-echo", "x")
        created = await client.create_flow(document)
        result = await client.run_flow(created.id, "what is 2+2?")
        assert result.output == "You are terse. Question: what is 2+2?"
        with pytest.raises(InvalidTweaks) as caught:
            await client.run_flow("prompt-echo", "x", tweaks={"Nope": {"a": 1}})
        assert "tweak 'Nope'" in caught.value.detail
        listed = await client.list_flows()
        assert created.id in {flow.id for flow in listed}
        await client.delete_flow(created.id)
        with pytest.raises(FlowNotFound):
            await client.get_flow(created.id)


async def test_update_flow_with_if_match_refuses_a_stale_etag(live_server: Any) -> None:
    async with (
        live_server(auth="on", api_key=KEY) as server,
        AsyncClient(server.url, api_key=KEY) as client,
    ):
        seen = await client.get_flow("prompt-echo")
        assert seen.etag
        updated = await client.update_flow(seen.id, if_match=seen.etag, description="mine")
        assert updated.description == "mine"
        assert updated.etag not in (None, seen.etag)
        with pytest.raises(FlowChanged) as caught:
            await client.update_flow(seen.id, if_match=seen.etag, description="stale")
        assert caught.value.status == 412
        assert "If-Match" in caught.value.detail
        assert (await client.get_flow(seen.id)).description == "mine"
        # Without if_match the last writer wins, as in Langflow.
        assert (await client.update_flow(seen.id, description="last")).description == "last"
