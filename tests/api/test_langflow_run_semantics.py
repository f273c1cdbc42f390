"""Run-body semantics where Langflow 1.13's behaviour is fixed by its code
(``simplified_run_flow`` -> ``run_graph_internal`` -> ``Graph.arun``/``_run``),
not by a recorded answer: which outputs are reported, what ``inputs`` echoes,
and which null fields it accepts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import edge, flow, node

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"


async def _create(client: httpx.AsyncClient, nodes: list[Any], edges: list[Any]) -> str:
    flow_id = str(uuid.uuid4())
    created = await client.post("/api/v1/flows/", json=flow(flow_id, nodes, edges))
    assert created.status_code == 201, created.text
    return flow_id


def _components(body: dict[str, Any]) -> list[str]:
    return [o["component_id"] for o in body["outputs"][0]["outputs"]]


async def test_a_flow_without_chat_output_reports_its_text_output(
    client: httpx.AsyncClient,
) -> None:
    # Langflow's Graph._run: when no output component matches output_type
    # ("chat" by default), every output component is reported.
    flow_id = await _create(
        client,
        [node("TextInput-a", "TextInput", input_value="x"), node("TextOutput-b", "TextOutput")],
        [edge("TextInput-a", "text", "TextOutput-b", "input_value")],
    )
    body = (await client.post(f"/api/v1/run/{flow_id}", json={"input_value": "plain"})).json()
    assert _components(body) == ["TextOutput-b"]
    # input_type "chat" (the default) feeds no Text Input: its own value stands.
    assert body["outputs"][0]["outputs"][0]["results"]["text"]["text"] == "x"


async def test_output_type_still_selects_when_it_matches(client: httpx.AsyncClient) -> None:
    flow_id = await _create(
        client,
        [
            node("ChatInput-a", "ChatInput", input_value=""),
            node("ChatOutput-b", "ChatOutput"),
            node("TextOutput-c", "TextOutput"),
        ],
        [
            edge("ChatInput-a", "message", "ChatOutput-b", "input_value"),
            edge("ChatInput-a", "message", "TextOutput-c", "input_value"),
        ],
    )
    url = f"/api/v1/run/{flow_id}"
    chat = (await client.post(url, json={"input_value": "q"})).json()
    assert _components(chat) == ["ChatOutput-b"]
    text = (await client.post(url, json={"input_value": "q", "output_type": "text"})).json()
    assert _components(text) == ["TextOutput-c"]
    every = (await client.post(url, json={"input_value": "q", "output_type": "any"})).json()
    assert _components(every) == ["ChatOutput-b", "TextOutput-c"]


async def test_inputs_echo_is_empty_without_an_input_value(client: httpx.AsyncClient) -> None:
    # Graph.arun: no input_value means inputs [{}], reported as "inputs": {}.
    body = (await client.post(f"/api/v1/run/{HELLO}", json={})).json()
    assert body["outputs"][0]["inputs"] == {}
    given = (await client.post(f"/api/v1/run/{HELLO}", json={"input_value": ""})).json()
    assert given["outputs"][0]["inputs"] == {"input_value": ""}


async def test_null_input_and_output_types_are_accepted(client: httpx.AsyncClient) -> None:
    # SimplifiedAPIRequest declares both Optional; clients that send every field send null.
    response = await client.post(
        f"/api/v1/run/{HELLO}",
        json={
            "input_value": "typed",
            "input_type": None,
            "output_type": None,
            "output_component": None,
            "tweaks": None,
            "session_id": None,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # null input_type feeds every input component (the flow's only one is a Text Input).
    assert body["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "typed"
    assert body["session_id"] == HELLO


async def test_output_component_by_display_name_selects_every_node_bearing_it(
    client: httpx.AsyncClient,
) -> None:
    # Graph._run reports each vertex whose id or display name is in outputs.
    twin_a = node("ChatOutput-b", "ChatOutput")
    twin_b = node("ChatOutput-c", "ChatOutput")
    for twin in (twin_a, twin_b):
        twin["data"]["node"]["display_name"] = "Answer"
    flow_id = await _create(
        client,
        [node("ChatInput-a", "ChatInput", input_value=""), twin_a, twin_b],
        [
            edge("ChatInput-a", "message", "ChatOutput-b", "input_value"),
            edge("ChatInput-a", "message", "ChatOutput-c", "input_value"),
        ],
    )
    url = f"/api/v1/run/{flow_id}"
    both = await client.post(url, json={"input_value": "q", "output_component": "Answer"})
    assert both.status_code == 200, both.text
    assert _components(both.json()) == ["ChatOutput-b", "ChatOutput-c"]
    one = await client.post(url, json={"input_value": "q", "output_component": "ChatOutput-c"})
    assert _components(one.json()) == ["ChatOutput-c"]
