"""POST /api/v1/run: Langflow's shapes, tweaks, errors, and streaming over a real socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RESPONSES
from tests.helpers import Gate, edge, flow, make_registry, node

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value (list items collapse to [])."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}"
            paths.add(path)
            paths |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, f"{prefix}[]")
    return paths


async def test_hello_world_answers_with_every_key_langflow_has(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/run/{HELLO}", json={"input_value": "hi there"})
    assert response.status_code == 200
    body = response.json()
    expected = json.loads((RESPONSES / "hello-world.run.json").read_text())
    missing = key_paths(expected) - key_paths(body)
    assert not missing, f"keys Langflow has that we lack: {sorted(missing)}"
    result = body["outputs"][0]["outputs"][0]
    assert result["results"]["message"]["text"] == "Hello, World!"
    assert result["component_id"] == "ChatOutput-boh63"
    assert result["results"]["message"]["properties"]["source"] == {
        "id": "TextInput-J1CQK",
        "display_name": "Text Input",
        "source": "Text Input",
    }
    assert body["session_id"] == HELLO
    assert body["outputs"][0]["inputs"] == {"input_value": "hi there"}
    assert body["metadata"]["duration"] >= 0


async def test_prompt_flow_by_endpoint_name_renders_the_template(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/run/prompt-echo", json={"input_value": "what is 2+2?"})
    assert response.status_code == 200
    body = response.json()
    message = body["outputs"][0]["outputs"][0]["results"]["message"]
    assert message["text"] == "You are terse. Question: what is 2+2?"
    # Langflow: with no session_id the session is the flow id, even by endpoint name.
    assert body["session_id"] == PROMPT_ECHO
    assert message["session_id"] == PROMPT_ECHO


async def test_tweak_overrides_the_template(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/run/{PROMPT_ECHO}",
        json={"input_value": "x", "tweaks": {"Prompt-t2oaK": {"template": "Tweaked: {question}"}}},
    )
    assert response.status_code == 200
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == (
        "Tweaked: x"
    )


async def test_tweak_by_display_name_applies(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/run/{PROMPT_ECHO}",
        json={
            "input_value": "y",
            "tweaks": {"Prompt Template": {"template": "By name: {question}"}},
        },
    )
    assert response.status_code == 200
    assert response.json()["outputs"][0]["outputs"][0]["messages"][0]["message"] == "By name: y"


async def test_custom_session_id_is_echoed_everywhere(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/run/{PROMPT_ECHO}", json={"input_value": "q", "session_id": "my-session"}
    )
    body = response.json()
    result = body["outputs"][0]["outputs"][0]
    assert body["session_id"] == "my-session"
    assert result["results"]["message"]["session_id"] == "my-session"
    assert result["messages"][0]["session_id"] == "my-session"


async def test_empty_body_runs_with_defaults(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/run/{PROMPT_ECHO}")
    assert response.status_code == 200
    text = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert text == "You are terse. Question: Hello"


async def test_text_input_type_feeds_text_inputs_only(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/run/{HELLO}", json={"input_value": "typed", "input_type": "text"}
    )
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "typed"


async def test_unknown_flow_is_404_with_langflows_detail(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/run/nope", json={"input_value": "x"})
    assert response.status_code == 404
    body = response.json()
    assert body["detail"] == "Flow identifier nope not found"
    assert body["code"] == "flow_not_found"
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("tweaks", "fragment"),
    [
        ({"Missing-1": {"template": "x"}}, "tweak 'Missing-1': no node"),
        ({"Prompt-t2oaK": {"nofield": "x"}}, "has no field 'nofield'"),
        ({"Prompt-t2oaK": {"template": 42}}, "expected a string, got int"),
        ({"ChatOutput-yK0AU": {"should_store_message": "yes"}}, "expected a boolean"),
        ({"Prompt-t2oaK": {"code": "import os"}}, "the code field cannot be tweaked"),
        ({"not_a_field_anywhere": 1}, "no node has a field of this name"),
        ({"Prompt-t2oaK": None}, "tweak 'Prompt-t2oaK': a node's tweaks must be an object"),
        ({"Prompt-t2oaK": ["x"]}, "must be an object of field values, got list"),
    ],
)
async def test_bad_tweaks_are_422_naming_node_and_field(
    client: httpx.AsyncClient, tweaks: dict[str, Any], fragment: str
) -> None:
    response = await client.post(
        f"/api/v1/run/{PROMPT_ECHO}", json={"input_value": "x", "tweaks": tweaks}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_tweaks"
    assert fragment in response.json()["detail"]


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/run/{PROMPT_ECHO}",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_wrong_body_type_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/run/{PROMPT_ECHO}", json={"input_value": "x", "output_type": "everything"}
    )
    assert response.status_code == 422
    assert "output_type" in response.json()["detail"]


async def test_unknown_output_component_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/run/{PROMPT_ECHO}", json={"output_component": "Nope-1"})
    assert response.status_code == 422
    assert "Nope-1" in response.json()["detail"]


async def test_oversized_body_is_413(live_server: Any) -> None:
    async with live_server(max_body_bytes=1024) as server, httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/api/v1/run/{PROMPT_ECHO}", json={"input_value": "x" * 5000}
        )
    assert response.status_code == 413
    assert "1024 bytes" in response.json()["detail"]


async def test_request_id_is_honoured_and_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/run/{HELLO}", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_stream_matches_langflows_event_format(live_server: Any) -> None:
    async with live_server() as server, httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/api/v1/run/{HELLO}?stream=true", json={"input_value": "hi there"}
        )
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = [json.loads(chunk) for chunk in response.text.split("\n\n") if chunk.strip()]
    assert [e["event"] for e in events] == ["add_message", "end"]
    assert events[0]["data"]["text"] == "Hello, World!"
    expected_message = json.loads(
        (RESPONSES / "hello-world.stream.txt").read_text().split("\n\n")[0]
    )["data"]
    assert set(expected_message) <= set(events[0]["data"])
    assert (
        events[1]["data"]["result"]["outputs"][0]["outputs"][0]["results"]["message"]["text"]
        == "Hello, World!"
    )


async def test_stream_events_arrive_before_the_run_ends(
    live_server: Any, settings: Any, flows_dir: Path
) -> None:
    Gate.reset()
    gated = flow(
        "gated",
        [
            node("ChatInput-a", "ChatInput", input_value=""),
            node("TestGate-b", "TestGate", gate="stream"),
            node("ChatOutput-c", "ChatOutput"),
        ],
        [
            edge("ChatInput-a", "message", "TestGate-b", "input_value"),
            edge("TestGate-b", "text", "ChatOutput-c", "input_value"),
        ],
    )
    (flows_dir / "gated.json").write_text(json.dumps(gated))
    async with (
        live_server(registry=make_registry()) as server,
        httpx.AsyncClient() as http,
        http.stream(
            "POST", f"{server.url}/api/v1/run/gated?stream=true", json={"input_value": "hello"}
        ) as response,
    ):
        lines = response.aiter_lines()
        first = await anext(lines)
        # The run is still held at the gate, yet the user's message has arrived.
        assert json.loads(first)["event"] == "add_message"
        assert json.loads(first)["data"]["sender"] == "User"
        assert not Gate.gates["stream"].is_set()
        Gate.gates["stream"].set()
        rest = [json.loads(line) async for line in lines if line.strip()]
    assert [e["event"] for e in rest] == ["add_message", "end"]
    assert rest[0]["data"]["text"] == "hello"


async def test_stream_reports_component_errors_as_error_event(
    live_server: Any, flows_dir: Path
) -> None:
    broken = flow(
        "broken",
        [node("ChatInput-a", "ChatInput"), node("TestBoom-b", "TestBoom")],
        [edge("ChatInput-a", "message", "TestBoom-b", "input_value")],
    )
    (flows_dir / "broken.json").write_text(json.dumps(broken))
    async with live_server(registry=make_registry()) as server, httpx.AsyncClient() as http:
        streamed = await http.post(f"{server.url}/api/v1/run/broken?stream=true", json={})
        plain = await http.post(f"{server.url}/api/v1/run/broken", json={})
    events = [json.loads(c) for c in streamed.text.split("\n\n") if c.strip()]
    assert events[-1]["event"] == "error"
    assert "Error running component 'TestBoom-b' (TestBoom-b)" in events[-1]["data"]["error"]
    assert "the component blew up" in events[-1]["data"]["error"]
    assert plain.status_code == 500
    assert plain.json()["code"] == "run_failed"
    assert "Traceback" not in plain.text


@pytest.mark.parametrize(
    "content", [b'{"tweaks":' * 50_000 + b"{}" + b"}" * 50_000, b'{"input_value": "\xff"}']
)
async def test_hostile_run_bodies_are_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(f"/api/v1/run/{PROMPT_ECHO}", content=content)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
