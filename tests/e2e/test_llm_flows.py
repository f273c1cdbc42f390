"""Langflow's starter LLM flows through the real HTTP API, against a fake provider on loopback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import FLOWS
from tests.fakes.openai_server import FakeOpenAI

BASIC = "c1cb7b3c-2589-4754-ac61-8cf88df4a07e"
MEMORY = "ea80d83d-67d1-4d89-84a9-014b6b97c8a7"


def provider_headers(fake: FakeOpenAI) -> dict[str, str]:
    # Langflow's per-request global variables: the caller's own key and endpoint.
    return {
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_API_KEY": "sk-caller",
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_BASE_URL": fake.base_url,
    }


def events_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(chunk) for chunk in text.split("\n\n") if chunk.strip()]


async def test_basic_prompting_streams_tokens_then_ends(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(FLOWS / "basic-prompting.json", flows_dir)
    body = {
        "input_value": "tell me a joke",
        "tweaks": {"LanguageModelComponent-FLeYF": {"model": "gpt-4o-mini"}},
    }
    async with (
        live_server(outbound_allowlist="127.0.0.1") as server,
        httpx.AsyncClient(timeout=30) as http,
    ):
        plain = await http.post(
            f"{server.url}/api/v1/run/{BASIC}", json=body, headers=provider_headers(fake_openai)
        )
        streamed = await http.post(
            f"{server.url}/api/v1/run/{BASIC}?stream=true",
            json=body,
            headers=provider_headers(fake_openai),
        )
    assert plain.status_code == 200, plain.text
    result = plain.json()
    assert result["outputs"][0]["outputs"][0]["results"]["message"]["text"] == (
        "Echo: tell me a joke"
    )
    assert result["metadata"]["tokens_used"] > 0
    sent = fake_openai.requests[0]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[0]["content"].startswith("Answer the user as if you were a GenAI expert")
    events = events_of(streamed.text)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "add_message"
    assert kinds[-1] == "end"
    tokens = [e["data"]["chunk"] for e in events if e["event"] == "token"]
    assert len(tokens) > 1
    assert "".join(tokens) == "Echo: tell me a joke"
    final = events[-1]["data"]["result"]["outputs"][0]["outputs"][0]["results"]["message"]
    token_ids = {e["data"]["id"] for e in events if e["event"] == "token"}
    assert token_ids == {final["data"]["id"]}


async def test_memory_chatbot_second_turn_sees_the_first_over_http(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(FLOWS / "memory-chatbot.json", flows_dir)
    tweaks = {"Agent-AlLub": {"model": [{"name": "gpt-4o-mini", "provider": "OpenAI"}]}}
    async with (
        live_server(outbound_allowlist="127.0.0.1") as server,
        httpx.AsyncClient(timeout=30) as http,
    ):
        for text in ("My name is Ada", "What is my name?"):
            response = await http.post(
                f"{server.url}/api/v1/run/{MEMORY}",
                json={"input_value": text, "session_id": "chat-1", "tweaks": tweaks},
                headers=provider_headers(fake_openai),
            )
            assert response.status_code == 200, response.text
    second = fake_openai.requests[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[1]["content"] == "My name is Ada"


async def test_llm_flow_without_a_model_is_a_422_naming_the_node(
    live_server: Any, flows_dir: Path
) -> None:
    shutil.copy(FLOWS / "basic-prompting.json", flows_dir)
    async with (
        live_server(outbound_allowlist="127.0.0.1") as server,
        httpx.AsyncClient(timeout=30) as http,
    ):
        response = await http.post(f"{server.url}/api/v1/run/{BASIC}", json={"input_value": "x"})
    assert response.status_code == 422
    assert "LanguageModelComponent-FLeYF" in response.json()["detail"]
