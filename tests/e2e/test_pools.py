"""Every bounded pool on a run's path, over real HTTP: sized by its setting, and full
means a 503 pool_exhausted with Retry-After that names the setting, then recovery.

The model is the fake OpenAI server on loopback; ``Hold`` keeps its answers back
until as many calls as the test wants are in flight at once.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from flowserve.app import create_app
from flowserve.components.http import APIRequest, URLComponent
from flowserve.components.outbound import new_http_client
from flowserve.errors import PoolExhausted
from flowserve.settings import Settings
from tests.conftest import FLOWS, _serve_in_lifespan
from tests.e2e.test_llm_flows import BASIC, events_of, provider_headers
from tests.fakes.flows import make_node, node_context
from tests.fakes.openai_server import FakeOpenAI, Hold
from tests.fakes.server import ThreadedServer

# More than the 100 connections the provider session (aiohttp's default) once allowed,
# which queued every further call.
IN_FLIGHT = 150


def _body(question: str) -> dict[str, Any]:
    return {
        "input_value": question,
        "tweaks": {"LanguageModelComponent-FLeYF": {"model": "gpt-4o-mini"}},
    }


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (bounded, so a broken test fails instead of hanging)."""
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110 - the fakes count in another thread's loop
            await asyncio.sleep(0.01)


def _assert_pool_exhausted(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["code"] == "pool_exhausted"
    assert f"FLOWSERVE_{setting}" in body["detail"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_more_than_a_hundred_model_calls_are_in_flight_at_once(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI, stream: bool
) -> None:
    shutil.copy(FLOWS / "basic-prompting.json", flows_dir)
    hold = fake_openai.hold = Hold(until=IN_FLIGHT)
    query = "?stream=true" if stream else ""
    async with (
        live_server(outbound_allowlist="127.0.0.1") as server,
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=None)) as http,
    ):
        answers = await asyncio.gather(
            *(
                http.post(
                    f"{server.url}/api/v1/run/{BASIC}{query}",
                    json=_body(f"question {i}"),
                    headers=provider_headers(fake_openai),
                )
                for i in range(IN_FLIGHT)
            )
        )
    # The model saw every call before it answered any: all were in flight together.
    assert hold.peak >= IN_FLIGHT
    for i, answer in enumerate(answers):
        assert answer.status_code == 200, answer.text
        if stream:
            events = events_of(answer.text)
            assert events[-1]["event"] == "end"
            tokens = [e["data"]["chunk"] for e in events if e["event"] == "token"]
            assert "".join(tokens) == f"Echo: question {i}"
        else:
            message = answer.json()["outputs"][0]["outputs"][0]["results"]["message"]
            assert message["text"] == f"Echo: question {i}"


async def test_a_full_provider_pool_is_a_503_with_retry_after_then_recovers(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(FLOWS / "basic-prompting.json", flows_dir)
    hold = fake_openai.hold = Hold()
    headers = provider_headers(fake_openai)
    async with (
        live_server(
            outbound_allowlist="127.0.0.1", provider_pool_size=1, provider_pool_timeout=0.2
        ) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        url = f"{server.url}/api/v1/run/{BASIC}"
        first = asyncio.create_task(http.post(url, json=_body("first"), headers=headers))
        await until(lambda: hold.held == 1)
        refused = await http.post(url, json=_body("second"), headers=headers)
        refused_stream = await http.post(f"{url}?stream=true", json=_body("third"), headers=headers)
        hold.release()
        answered = await first
        again = await http.post(url, json=_body("fourth"), headers=headers)
    _assert_pool_exhausted(refused, "PROVIDER_POOL_SIZE")
    assert "provider connection pool is full (PROVIDER_POOL_SIZE=1)" in refused.json()["detail"]
    # A stream has answered 200 by then: the refusal is its error event.
    [error] = [e for e in events_of(refused_stream.text) if e["event"] == "error"]
    assert error["data"]["code"] == "pool_exhausted"
    assert answered.status_code == 200, answered.text
    assert again.status_code == 200, again.text
    assert hold.arrived == 2  # the refused calls never reached the model


# ---- components' outbound HTTP ----------------------------------------------------------


@pytest.fixture
def held_site() -> AsyncIterator[tuple[ThreadedServer, Hold]]:
    hold = Hold()

    async def held(_: Request) -> PlainTextResponse:
        await hold.wait()
        return PlainTextResponse("done")

    server = ThreadedServer(Starlette(routes=[Route("/held", held)])).start()
    yield server, hold
    hold.release()
    server.stop()


def _api_request(url: str) -> dict[str, Any]:
    return {"url_input": url, "method": "GET", "mode": "URL", "timeout": 30}


async def _api_call(services: dict[str, Any], url: str) -> Any:
    """The API Request component's GET of ``url`` with these services."""
    ctx = node_context(services=services, wanted={"data"})
    return await APIRequest(make_node("APIRequest")).run(ctx, _api_request(url))


async def test_a_full_outbound_http_pool_is_a_503_not_a_502_then_recovers(
    held_site: tuple[ThreadedServer, Hold],
) -> None:
    site, hold = held_site
    url = f"{site.url}/held"
    async with new_http_client(pool_size=1, pool_timeout=0.2) as client:
        services = {"http": client, "outbound_allowlist": "127.0.0.1"}
        first = asyncio.create_task(_api_call(services, url))
        await until(lambda: hold.held == 1)
        with pytest.raises(PoolExhausted) as refused:
            await _api_call(services, url)
        hold.release()
        answered = await first
        again = await _api_call(services, url)
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert "HTTP_POOL_SIZE=1" in refused.value.detail
    assert "FLOWSERVE_HTTP_POOL_SIZE" in refused.value.detail
    assert answered["data"].data["status_code"] == 200
    assert again["data"].data["result"] == "done"


async def test_the_url_component_does_not_swallow_a_full_pool_as_a_page_error(
    held_site: tuple[ThreadedServer, Hold],
) -> None:
    # continue_on_failure turns a page's failure into an error row; a full pool is
    # this server's overload, so the caller gets the 503 and retries instead.
    site, hold = held_site
    url = f"{site.url}/held"
    async with new_http_client(pool_size=1, pool_timeout=0.2) as client:
        services = {"http": client, "outbound_allowlist": "127.0.0.1"}
        first = asyncio.create_task(_api_call(services, url))
        await until(lambda: hold.held == 1)
        params = {"urls": [f"{site.url}/other"], "continue_on_failure": True, "timeout": 5}
        with pytest.raises(PoolExhausted):
            await URLComponent(make_node("URLComponent")).run(
                node_context(services=services, wanted={"page_results"}), params
            )
        hold.release()
        await first


# ---- Redis and PostgreSQL ---------------------------------------------------------------


async def _served(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async for client in _serve_in_lifespan(app):
        yield app, client


async def test_a_full_redis_pool_is_a_503_with_retry_after_then_recovers(
    pg_settings: Settings,
) -> None:
    settings = pg_settings.replace(redis_pool_size=1, redis_pool_timeout=0.2)
    async for app, client in _served(settings):
        pool = app.state.services.redis.connection_pool
        taken = []
        while pool.can_get_connection():  # what the pub/sub listeners left
            taken.append(await pool.get_connection())
        refused = await client.get("/api/v1/monitor/messages/sessions")
        for connection in taken:
            await pool.release(connection)
        again = await client.get("/api/v1/monitor/messages/sessions")
    _assert_pool_exhausted(refused, "REDIS_POOL_SIZE")
    assert "REDIS_POOL_SIZE=1" in refused.json()["detail"]
    assert again.status_code == 200, again.text


async def test_a_full_database_pool_is_a_503_with_retry_after_then_recovers(
    pg_settings: Settings,
) -> None:
    settings = pg_settings.replace(database_pool_size=1, database_pool_timeout=0.2)
    async for app, client in _served(settings):
        pool = app.state.services.flows.pool
        connection = await pool.acquire()
        refused = await client.get("/api/v1/flows/")
        await pool.release(connection)
        again = await client.get("/api/v1/flows/")
    _assert_pool_exhausted(refused, "DATABASE_POOL_SIZE")
    assert "DATABASE_POOL_SIZE=1" in refused.json()["detail"]
    assert again.status_code == 200, again.text
