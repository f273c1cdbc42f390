"""``POST /api/v1/flows/{flow_id}/run``: the hosted docs' run endpoint, on Postgres + Redis.

The documented curl (a Bearer key, ``input_value``/``tweaks``/``session_id``) answers
``{"result": {"output"}, "session_id", "metadata": {"duration", "tokens_used"}}`` with
the run's real duration and token count (an LLM flow against the fake provider).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.api.authed import BOOTSTRAP_KEY, HELLO, PROMPT_ECHO
from tests.conftest import FLOWS, LiveServer
from tests.fakes.openai_server import FakeOpenAI

BASIC = "c1cb7b3c-2589-4754-ac61-8cf88df4a07e"
MODEL = {"LanguageModelComponent-FLeYF": {"model": "gpt-4o-mini"}}


def server(settings: Settings, flows_dir: Path) -> LiveServer:
    shutil.copy(FLOWS / "basic-prompting.json", flows_dir)
    return LiveServer(
        create_app(
            settings.replace(auth="on", api_key=BOOTSTRAP_KEY, outbound_allowlist="127.0.0.1")
        )
    )


def provider(fake: FakeOpenAI) -> dict[str, str]:
    return {
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_API_KEY": "sk-caller",
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_BASE_URL": fake.base_url,
    }


async def test_documented_curl_answers_output_session_duration_and_real_tokens(
    pg_settings: Settings, flows_dir: Path, fake_openai: FakeOpenAI
) -> None:
    body = {"input_value": "tell me a joke", "tweaks": MODEL, "session_id": "chat-123"}
    bearer = {"Authorization": f"Bearer {BOOTSTRAP_KEY}", **provider(fake_openai)}
    async with server(pg_settings, flows_dir) as live, httpx.AsyncClient(timeout=30) as http:
        hosted = await http.post(f"{live.url}/api/v1/flows/{BASIC}/run", json=body, headers=bearer)
        v1 = await http.post(f"{live.url}/api/v1/run/{BASIC}", json=body, headers=bearer)
    assert hosted.status_code == 200, hosted.text
    answer = hosted.json()
    assert set(answer) == {"result", "session_id", "metadata"}
    assert answer["result"] == {"output": "Echo: tell me a joke"}
    assert answer["session_id"] == "chat-123"
    assert set(answer["metadata"]) == {"duration", "tokens_used"}
    assert answer["metadata"]["duration"] > 0
    # The same count /api/v1/run reports for the same run: the provider's usage.
    assert answer["metadata"]["tokens_used"] > 0
    assert answer["metadata"]["tokens_used"] == v1.json()["metadata"]["tokens_used"]
    assert len(fake_openai.requests) == 2


async def test_x_api_key_works_and_stream_is_the_run_event_stream(
    pg_settings: Settings, flows_dir: Path, fake_openai: FakeOpenAI
) -> None:
    body = {"input_value": "stream it", "tweaks": MODEL}
    headers = {"x-api-key": BOOTSTRAP_KEY, **provider(fake_openai)}
    async with server(pg_settings, flows_dir) as live, httpx.AsyncClient(timeout=30) as http:
        plain = await http.post(f"{live.url}/api/v1/flows/{BASIC}/run", json=body, headers=headers)
        streamed = await http.post(
            f"{live.url}/api/v1/flows/{BASIC}/run?stream=true", json=body, headers=headers
        )
    assert plain.status_code == 200, plain.text
    assert plain.json()["result"]["output"] == "Echo: stream it"
    assert plain.json()["session_id"] == BASIC  # no session_id: the flow's id, as /run
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(chunk) for chunk in streamed.text.split("\n\n") if chunk.strip()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "add_message"
    assert kinds[-1] == "end"
    assert "".join(e["data"]["chunk"] for e in events if e["event"] == "token") == "Echo: stream it"
    end = events[-1]["data"]["result"]
    assert end["metadata"]["tokens_used"] > 0


async def test_errors_and_restrictions_are_those_of_the_run_route(
    pg_settings: Settings, flows_dir: Path
) -> None:
    async with (
        server(pg_settings, flows_dir) as live,
        httpx.AsyncClient(base_url=live.url, timeout=30) as http,
    ):
        admin = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        created = await http.post(
            "/api/v1/api_key/",
            json={"name": "echo only", "scopes": ["execute"], "flows": [PROMPT_ECHO]},
            headers=admin,
        )
        echo_only = {"Authorization": f"Bearer {created.json()['api_key']}"}
        missing = await http.post(
            "/api/v1/flows/00000000-0000-4000-8000-000000000000/run", json={}, headers=admin
        )
        tweak = await http.post(
            f"/api/v1/flows/{HELLO}/run", json={"tweaks": {"Nope": {"x": 1}}}, headers=admin
        )
        bad_body = await http.post(
            f"/api/v1/flows/{HELLO}/run", json={"input_value": 3}, headers=admin
        )
        no_key = await http.post(f"/api/v1/flows/{HELLO}/run", json={})
        other_flow = await http.post(f"/api/v1/flows/{HELLO}/run", json={}, headers=echo_only)
        own_flow = await http.post(
            f"/api/v1/flows/{PROMPT_ECHO}/run", json={"input_value": "2+2?"}, headers=echo_only
        )
    statuses = [r.status_code for r in (missing, tweak, bad_body, no_key, other_flow)]
    assert statuses == [404, 422, 422, 401, 403]
    for response in (missing, tweak, bad_body, no_key, other_flow):
        assert isinstance(response.json()["detail"], str)
        assert response.json()["detail"]
    assert "Nope" in tweak.json()["detail"]
    assert own_flow.status_code == 200, own_flow.text
    answer: dict[str, Any] = own_flow.json()
    assert answer["result"]["output"] == "You are terse. Question: 2+2?"
    assert answer["metadata"]["tokens_used"] == 0  # no model was called
