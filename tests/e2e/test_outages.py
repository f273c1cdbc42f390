"""PostgreSQL or Redis down: 503 with a clear detail, health says which, and recovery by itself.

Each test reaches the shared servers through its own loopback proxy and cuts only
that proxy, so nothing else on the machine notices.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan
from tests.faults import TcpProxy

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
async def redis_proxy(pg_settings: Settings) -> AsyncIterator[TcpProxy]:
    target = urlsplit(pg_settings.redis_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        yield proxy


@pytest.fixture
async def pg_proxy(pg_settings: Settings) -> AsyncIterator[TcpProxy]:
    target = urlsplit(pg_settings.database_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        yield proxy


async def test_redis_down_is_a_503_naming_redis_and_recovers(
    pg_settings: Settings, redis_proxy: TcpProxy
) -> None:
    settings = pg_settings.replace(redis_url=through(pg_settings.redis_url, redis_proxy.port))
    async for client in _serve_in_lifespan(create_app(settings)):
        body = {"input_value": "hi", "session_id": "s"}
        assert (await client.post("/api/v1/run/prompt-echo", json=body)).status_code == 200

        await redis_proxy.down()
        health = await client.get("/health_check")
        assert health.status_code == 503
        assert health.json()["stores"]["flows"] == "ok"
        assert "Redis is unavailable" in health.json()["stores"]["messages"]
        run = await client.post("/api/v1/run/prompt-echo", json=body)
        assert run.status_code == 503
        assert "Redis is unavailable" in run.json()["detail"]

        await redis_proxy.up()
        assert (await client.get("/health_check")).status_code == 200
        assert (await client.post("/api/v1/run/prompt-echo", json=body)).status_code == 200
        session = await client.get("/api/v1/sessions/s")
        assert len(session.json()["messages"]) == 4


async def test_postgres_down_is_a_503_naming_postgres_and_recovers(
    pg_settings: Settings, pg_proxy: TcpProxy
) -> None:
    settings = pg_settings.replace(database_url=through(pg_settings.database_url, pg_proxy.port))
    async for client in _serve_in_lifespan(create_app(settings)):
        await pg_proxy.down()
        health = await client.get("/health_check")
        assert health.status_code == 503
        assert "PostgreSQL is unavailable" in health.json()["stores"]["flows"]
        assert health.json()["stores"]["messages"] == "ok"
        cold = await client.post(f"/api/v1/run/{HELLO}", json={})
        assert cold.status_code == 503
        assert "PostgreSQL is unavailable" in cold.json()["detail"]
        listing = await client.get("/api/v1/flows/")
        assert listing.status_code == 503

        await pg_proxy.up()
        assert (await client.get("/health_check")).status_code == 200
        assert (await client.post(f"/api/v1/run/{HELLO}", json={})).status_code == 200
        assert len((await client.get("/api/v1/flows/")).json()) == 2
