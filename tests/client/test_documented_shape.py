"""The client in the shape the docs show, and its v2 workflow calls, against a live flowserve."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowserve.client import AsyncClient, Client, FlowNotFound, JobNotFound

KEY = "fs_test_client-documented-key"
PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
TWEAK = {"Prompt-t2oaK": {"template": "Q: {question}"}}


def documented(url: str) -> tuple[str, str]:
    client = Client(base_url=url, api_key=KEY)
    try:
        by_keyword = client.run_flow(flow_id=PROMPT_ECHO, input_value="2+2?", tweaks=TWEAK).output
        positional = client.run_flow(PROMPT_ECHO, "3+3?").output
    finally:
        client.close()
    return by_keyword, positional


async def test_documented_run_flow_keywords_and_positional_use(live_server: Any) -> None:
    async with live_server(auth="on", api_key=KEY) as server:
        # The sync client blocks: run it beside the server's event loop.
        by_keyword, positional = await asyncio.to_thread(documented, server.url)
    assert by_keyword == "Q: 2+2?"
    assert positional == "You are terse. Question: 3+3?"


async def test_workflow_jobs_submit_wait_and_stop(live_server: Any) -> None:
    async with (
        live_server(auth="on", api_key=KEY) as server,
        AsyncClient(base_url=server.url, api_key=KEY) as client,
    ):
        run = await client.submit_workflow(PROMPT_ECHO, "later?", tweaks=TWEAK)
        assert run.status == "queued"
        assert run.job_id
        done = await client.wait_workflow(run.job_id, timeout=30)
        stopped = await client.stop_workflow(run.job_id)
        with pytest.raises(JobNotFound):
            await client.workflow("00000000-0000-4000-8000-000000000000")
        with pytest.raises(FlowNotFound):
            await client.submit_workflow("00000000-0000-4000-8000-000000000000")
    assert (done.status, done.output) == ("completed", "Q: later?")
    assert done.body["outputs"]
    assert stopped == f"Job {run.job_id} already finished (completed)."
