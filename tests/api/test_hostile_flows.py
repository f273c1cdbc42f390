"""A corpus of hostile flow files through the flows API: each is refused with a clear
4xx and nothing is written, or (for code payloads) saved and run without executing
anything from the file."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FLOWS
from tests.helpers import edge, flow, node


def _hello() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FLOWS / "hello-world.json").read_text())
    document["id"] = str(uuid.uuid4())
    document["name"] = "hostile-" + document["id"][:8]
    document.pop("endpoint_name", None)
    return document


def _ten_thousand_nodes() -> dict[str, Any]:
    nodes = [node(f"n{i}", "TextInput", input_value="x") for i in range(10_000)]
    return flow(str(uuid.uuid4()), nodes, [])


def _deep_nesting() -> bytes:
    document = _hello()
    document["data"]["nodes"][0]["data"]["node"]["template"]["input_value"]["value"] = "DEEP"
    deep = b"[" * 100_000 + b"1" + b"]" * 100_000
    return json.dumps(document).encode().replace(b'"DEEP"', deep)


def _huge_string() -> dict[str, Any]:
    document = _hello()
    document["name"] = "n" * 2_000_000
    return document


def _cycle() -> dict[str, Any]:
    nodes = [node("a", "TextOutput"), node("b", "TextOutput")]
    edges = [edge("a", "text", "b", "input_value"), edge("b", "text", "a", "input_value")]
    return flow(str(uuid.uuid4()), nodes, edges)


def _edge_to_nowhere() -> dict[str, Any]:
    document = _hello()
    document["data"]["edges"].append(
        edge(document["data"]["nodes"][0]["id"], "text", "ghost-node", "input_value")
    )
    return document


def _duplicate_ids() -> dict[str, Any]:
    document = _hello()
    document["data"]["nodes"].append(copy.deepcopy(document["data"]["nodes"][0]))
    return document


def _wrong_types() -> dict[str, Any]:
    document = _hello()
    document["data"]["nodes"] = {"not": "a list"}
    return document


def _unknown_component() -> dict[str, Any]:
    return flow(str(uuid.uuid4()), [node("evil", "CustomComponent", code="import os")], [])


CORPUS: dict[str, Callable[[], dict[str, Any] | bytes]] = {
    "10k nodes": _ten_thousand_nodes,
    "deep nesting": _deep_nesting,
    "huge string": _huge_string,
    "cycle": _cycle,
    "edge to nowhere": _edge_to_nowhere,
    "duplicate node ids": _duplicate_ids,
    "wrong types": _wrong_types,
    "unknown component with code": _unknown_component,
}


@pytest.mark.parametrize("name", list(CORPUS))
async def test_hostile_flow_is_refused_clearly(client: httpx.AsyncClient, name: str) -> None:
    document = CORPUS[name]()
    before = (await client.get("/api/v1/flows/", params={"header_flows": True})).json()
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    created = await client.post(
        "/api/v1/flows/", content=body, headers={"content-type": "application/json"}
    )
    uploaded = await client.post(
        "/api/v1/flows/upload/", files={"file": ("flow.json", body, "application/json")}
    )
    for response in (created, uploaded):
        assert 400 <= response.status_code < 500, response.text[:500]
        assert response.json()["detail"]
        assert len(response.content) < 10_000  # the error names the problem, not the input
    after = (await client.get("/api/v1/flows/", params={"header_flows": True})).json()
    assert after == before  # nothing half-written


@pytest.mark.parametrize(
    "content", [b'\xff\xfe\x00{"name": "x"}', b'{"name": "\xc3\x28", "data": {}}']
)
async def test_non_utf8_flow_files_are_400(client: httpx.AsyncClient, content: bytes) -> None:
    created = await client.post(
        "/api/v1/flows/", content=content, headers={"content-type": "application/json"}
    )
    uploaded = await client.post(
        "/api/v1/flows/upload/", files={"file": ("flow.json", content, "application/json")}
    )
    for response in (created, uploaded):
        assert response.status_code == 400
        assert response.json()["detail"]


async def test_code_fields_are_saved_and_run_but_never_executed(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = (
        f"open({str(marker)!r}, 'w').write('ran')\n"
        f"__import__('pathlib').Path({str(marker)!r}).touch()\n"
        "class Component:\n    def build(self):\n"
        f"        open({str(marker)!r}, 'w').write('ran')\n"
    )
    for how in ("create", "upload"):
        document = _hello()
        for item in document["data"]["nodes"]:
            item["data"]["node"]["template"]["code"] = {"type": "code", "value": payload}
        body = json.dumps(document).encode()
        if how == "create":
            saved = await client.post(
                "/api/v1/flows/", content=body, headers={"content-type": "application/json"}
            )
        else:
            saved = await client.post(
                "/api/v1/flows/upload/", files={"file": ("f.json", body, "application/json")}
            )
        assert saved.status_code == 201, saved.text
        # The code is kept as data (a round trip gives it back unchanged)...
        stored = (await client.get(f"/api/v1/flows/{document['id']}")).json()
        assert stored["data"]["nodes"][0]["data"]["node"]["template"]["code"]["value"] == payload
        ran = await client.post(
            f"/api/v1/run/{document['id']}", json={"input_value": "hi", "input_type": "text"}
        )
        assert ran.status_code == 200, ran.text
        # ...and running the flow executes none of it.
        assert not marker.exists()
        # Nor can a tweak smuggle code in.
        tweaked = await client.post(
            f"/api/v1/run/{document['id']}",
            json={"tweaks": {document["data"]["nodes"][0]["id"]: {"code": payload}}},
        )
        assert tweaked.status_code == 422
        assert "code" in tweaked.json()["detail"]
        assert not marker.exists()


async def test_webhook_body_with_invalid_utf8_is_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    document = _hello()
    document["webhook"] = True
    body = json.dumps(document).encode()
    saved = await client.post(
        "/api/v1/flows/", content=body, headers={"content-type": "application/json"}
    )
    assert saved.status_code == 201, saved.text
    response = await client.post(
        f"/api/v1/webhook/{document['id']}",
        content=b'{"text": "\xc3\x28"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code < 500, response.text
