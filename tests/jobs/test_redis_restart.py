"""A job that finishes while Redis is down records its result once Redis is back: one run.

Its own redis-server (never the shared one), stopped while the job's run is held
at a gate, kept down past the visibility timeout (so the job's queue entry looks
abandoned when Redis returns), then started again.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan
from tests.faults import RedisInstance
from tests.helpers import Gate, edge, flow, node
from tests.jobs.support import webhook_registry, write_flow
from tests.jobs.test_webhooks import wait_final

GATED = "8d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"
VISIBILITY = 1.0


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisInstance]:
    directory = tmp_path / "redis"
    directory.mkdir()
    redis = await asyncio.to_thread(RedisInstance(directory).start)
    yield redis
    await asyncio.to_thread(redis.stop)


async def test_a_job_finished_during_an_outage_is_recorded_once_not_run_again(
    settings: Settings, flows_dir: Path, own_redis: RedisInstance
) -> None:
    write_flow(
        flows_dir,
        "gated.json",
        flow(
            GATED,
            [node("Webhook-1", "Webhook", data=""), node("Gate-1", "TestGate", gate="outage")],
            [edge("Webhook-1", "output_data", "Gate-1", "input_value")],
            endpoint_name="gated",
        ),
    )
    Gate.reset()
    app_settings = settings.replace(
        redis_url=own_redis.url,
        job_visibility_timeout=VISIBILITY,
        job_retry_base=0.05,
        job_retry_max=0.2,
    )
    async for client in _serve_in_lifespan(create_app(app_settings, registry=webhook_registry())):
        accepted = await client.post("/api/v1/webhook/gated", json={"n": 1})
        assert accepted.status_code == 202
        entered = Gate.entered.setdefault("outage", asyncio.Event())
        await asyncio.wait_for(entered.wait(), 20)

        await asyncio.to_thread(own_redis.stop, signal.SIGKILL)
        Gate.gates.setdefault("outage", asyncio.Event()).set()  # the run finishes now
        # Down longer than the visibility timeout: the entry is idle past it when Redis
        # returns, so the worker's next claim would hand the job out again.
        await asyncio.sleep(VISIBILITY * 1.5)
        await asyncio.to_thread(own_redis.start)

        job = await wait_final(client, accepted.headers["location"], within=30)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1  # run once: its result was written, not the job rerun
    Gate.reset()
