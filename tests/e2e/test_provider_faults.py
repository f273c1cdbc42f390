"""A provider that hangs or answers garbage fails the run cleanly; the server goes on.

The LLM flow (Langflow's Basic Prompting) runs through a real uvicorn against the
fake providers, switched to one broken answer at a time (tests/fakes/garbage.py).
Every run ends in a 502 ``upstream_error`` naming the provider, or, streamed, in a
final ``error`` event: never a 500, never a hung request or stream.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FLOWS, LiveServer
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.garbage import FAULTS, Fault
from tests.fakes.openai_server import FakeOpenAI

BASIC = "c1cb7b3c-2589-4754-ac61-8cf88df4a07e"
HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
MODEL_NODE = "LanguageModelComponent-FLeYF"
# The provider timeout, small so the hangs end quickly: a per-node field, tweakable.
TIMEOUT = 0.5

# What the run's error says, per fault (streamed or not, either provider).
EXPECTED: dict[Fault, str] = {
    "hang_before_headers": rf"API timed out after {TIMEOUT:g}s",
    "hang_after_headers": rf"API timed out after {TIMEOUT:g}s",
    "not_json": "malformed JSON",
    "bad_utf8": "malformed JSON",
    "truncated": "closed the connection before the answer was complete",
    "cut_short": "malformed JSON|stream ended before the answer was complete",
    "wrong_shape": "unexpected shape|malformed JSON|stream ended before the answer was complete",
}


@dataclass
class Provider:
    name: str
    fake: FakeOpenAI | FakeAnthropic
    headers: dict[str, str]
    tweaks: dict[str, Any]


def openai(fake: FakeOpenAI) -> Provider:
    headers = {
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_API_KEY": "sk-caller",
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_BASE_URL": fake.base_url,
    }
    return Provider("OpenAI", fake, headers, {"model": "gpt-4o-mini"})


@pytest.fixture(params=["OpenAI", "Anthropic"])
def provider(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> Provider:
    if request.param == "OpenAI":
        return openai(fake_openai)
    return Provider(
        "Anthropic",
        fake_anthropic,
        {
            "X-LANGFLOW-GLOBAL-VAR-ANTHROPIC_API_KEY": "sk-ant-caller",
            "X-LANGFLOW-GLOBAL-VAR-ANTHROPIC_BASE_URL": fake_anthropic.base_url,
        },
        {"provider": "Anthropic", "model": "claude-3-5-haiku-latest"},
    )


@pytest.fixture
async def server(
    live_server: Callable[..., LiveServer], flows_dir: Path
) -> AsyncIterator[LiveServer]:
    shutil.copy(FLOWS / "basic-prompting.json", flows_dir)
    async with live_server(
        job_worker=False, outbound_allowlist="127.0.0.1"
    ) as running:  # no job poll to wait for at exit
        yield running


def run_body(provider: Provider, timeout: float = TIMEOUT) -> dict[str, Any]:
    node = {**provider.tweaks, "timeout": timeout, "max_retries": 0}
    return {"input_value": "hello", "tweaks": {MODEL_NODE: node}}


def events_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(chunk) for chunk in text.split("\n\n") if chunk.strip()]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_broken_provider_fails_the_run_with_a_502(
    server: LiveServer, provider: Provider, fault: Fault
) -> None:
    provider.fake.fault = fault
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(
            f"/api/v1/run/{BASIC}", json=run_body(provider), headers=provider.headers
        )
    assert response.status_code == 502, response.text
    error = response.json()
    assert error["code"] == "upstream_error"
    assert f"{provider.name} " in error["detail"]
    assert error["detail"].startswith("Error running component 'Language Model'")
    assert any(part in error["detail"] for part in EXPECTED[fault].split("|")), error


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_broken_provider_ends_a_streamed_run_with_an_error_event(
    server: LiveServer, provider: Provider, fault: Fault
) -> None:
    provider.fake.fault = fault
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(
            f"/api/v1/run/{BASIC}?stream=true", json=run_body(provider), headers=provider.headers
        )
    assert response.status_code == 200
    events = events_of(response.text)
    assert events[-1]["event"] == "error", events[-1]
    assert "end" not in {e["event"] for e in events}
    error = events[-1]["data"]
    assert error["code"] == "upstream_error"
    assert f"{provider.name} " in error["error"]
    assert any(part in error["error"] for part in EXPECTED[fault].split("|")), error


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("fault", ["hang_before_headers", "hang_after_headers"])
async def test_runs_hung_on_a_provider_do_not_hold_up_other_runs(
    server: LiveServer, fake_openai: FakeOpenAI, fault: Fault, stream: bool
) -> None:
    provider = openai(fake_openai)
    fake_openai.fault = fault
    hung = 4
    query = "?stream=true" if stream else ""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        # A long provider timeout: these runs hang until the test lets the provider go.
        stuck = [
            asyncio.create_task(
                http.post(
                    f"/api/v1/run/{BASIC}{query}",
                    json=run_body(provider, timeout=60),
                    headers=provider.headers,
                )
            )
            for _ in range(hung)
        ]
        async with asyncio.timeout(30):
            while len(fake_openai.requests) < hung:  # noqa: ASYNC110 - filled by its thread
                await asyncio.sleep(0.02)
        # Every hung run holds its provider call: the server still answers everything else.
        for n in range(5):
            other = await http.post(f"/api/v1/run/{HELLO}", json={"input_value": f"m{n}"})
            assert other.status_code == 200
            assert (await http.get("/health_check")).status_code == 200
        assert not any(task.done() for task in stuck)

        fake_openai.fault = None  # the provider answers at last: a 500, or a cut-off body
        answers = await asyncio.gather(*stuck)
    for answer in answers:
        if stream:
            assert answer.status_code == 200
            last = events_of(answer.text)[-1]
            assert last["event"] == "error"
            assert last["data"]["code"] == "upstream_error"
        else:
            assert answer.status_code == 502, answer.text
            assert answer.json()["code"] == "upstream_error"


async def test_a_hang_is_retried_like_any_timeout_then_fails_cleanly(
    server: LiveServer, fake_openai: FakeOpenAI
) -> None:
    # Langflow's (the OpenAI SDK's) semantics: a timeout is retried `max_retries` times,
    # so a hung provider holds a run for (max_retries + 1) x timeout, capped by the
    # run timeout.
    provider = openai(fake_openai)
    fake_openai.fault = "hang_before_headers"
    body = run_body(provider, timeout=0.3)
    body["tweaks"][MODEL_NODE]["max_retries"] = 1
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(f"/api/v1/run/{BASIC}", json=body, headers=provider.headers)
    assert response.status_code == 502
    assert "OpenAI API timed out after 0.3s" in response.json()["detail"]
    assert len(fake_openai.requests) == 2
