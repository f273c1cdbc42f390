"""Downloads name their file after the flow: any name must give a valid header."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.helpers import flow, node


@pytest.mark.parametrize(
    "name", ["日本語のフロー", "line\r\nSet-Cookie: x=1", 'quote " and \\ back', "é"]
)
async def test_single_flow_download_with_any_name(client: httpx.AsyncClient, name: str) -> None:
    flow_id = str(uuid.uuid4())
    document = {**flow(flow_id, [node("ChatInput-a", "ChatInput")], []), "name": name}
    assert (await client.post("/api/v1/flows/", json=document)).status_code == 201
    response = await client.get("/api/v1/flows/download/", params={"ids": flow_id})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == name
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert "Set-Cookie" not in response.headers


async def test_project_download_with_a_non_latin_name(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/projects/", json={"name": "项目 ✓"})
    assert created.status_code == 201
    response = await client.get(f"/api/v1/projects/download/{created.json()['id']}")
    assert response.status_code == 200, response.text
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
