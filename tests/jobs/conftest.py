"""Job fixtures: a Redis key prefix per test (deleted afterwards), flows with a Webhook."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import FLOWS, _serve_in_lifespan
from tests.jobs.support import failing_flow, slow_flow, webhook_registry, write_flow

REDIS_URL = "redis://127.0.0.1:6379/0"
SESSION = uuid.uuid4().hex[:8]


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"flowserve-test-{SESSION}-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


@pytest.fixture
def job_flows(flows_dir: Path) -> Path:
    shutil.copy(FLOWS / "webhook-echo.json", flows_dir / "webhook-echo.json")
    write_flow(flows_dir, "slow.json", slow_flow(0.3))
    write_flow(flows_dir, "failing.json", failing_flow())
    return flows_dir


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def job_settings(
    settings: Settings, job_flows: Path, backend: str, request: pytest.FixtureRequest
) -> Settings:
    fast = settings.replace(
        flows_dir=str(job_flows),
        job_visibility_timeout=1.5,
        job_retry_base=0.05,
        job_retry_max=0.2,
        job_max_attempts=3,
        webhook_max_attempts=5,
        webhook_allowlist="127.0.0.1",
    )
    if backend == "redis":
        prefix: str = request.getfixturevalue("redis_prefix")
        return fast.replace(redis_url=REDIS_URL, redis_prefix=prefix)
    return fast


AppClient = Callable[..., Any]


@pytest.fixture
async def job_client(job_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(job_settings, registry=webhook_registry())
    async for client in _serve_in_lifespan(app):
        yield client
