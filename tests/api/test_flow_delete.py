"""Deleting a flow deletes what other stores keep for it, on every backend.

Langflow's ``cascade_delete_flow`` deletes a flow's messages with it; we do the
same, and delete its event subscriptions (and their delivery logs) too, so a
flow put back under the same id starts clean and Redis keeps nothing for it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from flowserve.settings import Settings
from flowserve.store.redis import connect
from flowserve.store.redis_jobs import DELIVERY_LOG
from tests.conftest import FLOWS, TEST_REDIS_URL

PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
# A global address literal: accepted without DNS, never contacted (the subscription is off).
HOOK = "https://93.184.215.14/hook"


async def _chat(client: httpx.AsyncClient, flow: str, session_id: str) -> None:
    body = {"input_value": "hi", "session_id": session_id}
    response = await client.post(f"/api/v1/run/{flow}", json=body)
    assert response.status_code == 200, response.text


async def _subscribe(client: httpx.AsyncClient, flow: str) -> str:
    spec = {"url": HOOK, "enabled": False}
    response = await client.post(f"/api/v1/flows/{flow}/subscriptions", json=spec)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _delete(client: httpx.AsyncClient, how: str) -> None:
    if how == "single":
        response = await client.delete(f"/api/v1/flows/{PROMPT_ECHO}")
        assert response.status_code == 200, response.text
    elif how == "batch":
        response = await client.request("DELETE", "/api/v1/flows/", json=[PROMPT_ECHO])
        assert response.json() == {"deleted": 1}
    else:
        created = await client.post("/api/v1/projects/", json={"name": "Doomed"})
        project = created.json()["id"]
        moved = await client.patch(f"/api/v1/projects/{project}", json={"flows": [PROMPT_ECHO]})
        assert moved.status_code == 200, moved.text
        response = await client.delete(f"/api/v1/projects/{project}")
        assert response.status_code == 204, response.text


async def _redis_keys(settings: Settings, *needles: str) -> list[str]:
    """Keys of this test's Redis prefix that mention any of ``needles``."""
    client = connect(TEST_REDIS_URL)
    try:
        found = [k.decode() async for k in client.scan_iter(match=settings.redis_prefix + "*")]
    finally:
        await client.aclose()
    return sorted(k for k in found if any(n in k for n in needles))


@pytest.mark.parametrize("how", ["single", "batch", "project"])
async def test_deleting_a_flow_deletes_its_messages_and_subscriptions(
    backend_client: httpx.AsyncClient, backend_settings: Settings, how: str
) -> None:
    client = backend_client
    await _chat(client, PROMPT_ECHO, "s1")
    await _chat(client, PROMPT_ECHO, "shared")
    await _chat(client, HELLO, "shared")
    sub = await _subscribe(client, PROMPT_ECHO)
    kept_sub = await _subscribe(client, HELLO)
    redis = bool(backend_settings.redis_url)
    if redis:  # a delivery log, as a past delivery would have left
        raw = connect(TEST_REDIS_URL)
        await raw.lpush(f"{backend_settings.redis_prefix}{DELIVERY_LOG}{sub}", b"{}")
        await raw.aclose()
        assert await _redis_keys(backend_settings, PROMPT_ECHO, sub)

    await _delete(client, how)

    messages = (await client.get("/api/v1/monitor/messages")).json()
    assert {(m["flow_id"], m["session_id"]) for m in messages} == {(HELLO, "shared")}
    assert (await client.get("/api/v1/monitor/messages/sessions")).json() == ["shared"]
    # Put back under the same id, the flow inherits nothing.
    document: dict[str, Any] = json.loads((FLOWS / "prompt-echo.json").read_text())
    document.pop("folder_id", None)
    restored = await client.put(f"/api/v1/flows/{PROMPT_ECHO}", json=document)
    assert restored.status_code == 201, restored.text
    subs = (await client.get(f"/api/v1/flows/{PROMPT_ECHO}/subscriptions")).json()
    assert subs == {"subscriptions": []}
    listed = (await client.get(f"/api/v1/monitor/messages?flow_id={PROMPT_ECHO}")).json()
    assert listed == []
    others = (await client.get(f"/api/v1/flows/{HELLO}/subscriptions")).json()
    assert [s["id"] for s in others["subscriptions"]] == [kept_sub]
    if redis:
        assert await _redis_keys(backend_settings, PROMPT_ECHO, sub) == []


async def test_deleting_an_unknown_flow_is_404_and_keeps_other_flows_data(
    backend_client: httpx.AsyncClient,
) -> None:
    await _chat(backend_client, HELLO, "s")
    response = await backend_client.delete("/api/v1/flows/00000000-0000-4000-8000-00000000abcd")
    assert response.status_code == 404
    assert response.json()["detail"]
    assert (await backend_client.get("/api/v1/monitor/messages/sessions")).json() == ["s"]
