"""Session messages over HTTP: monitor (Langflow's) and /api/v1/sessions (ours)."""

from __future__ import annotations

import httpx

from flowserve.store.redis import connect
from tests.conftest import TEST_REDIS_URL

PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"


async def _chat(client: httpx.AsyncClient, text: str, session_id: str | None = None) -> None:
    body: dict[str, str] = {"input_value": text}
    if session_id is not None:
        body["session_id"] = session_id
    response = await client.post("/api/v1/run/prompt-echo", json=body)
    assert response.status_code == 200


async def test_run_messages_are_listed_by_the_monitor(backend_client: httpx.AsyncClient) -> None:
    await _chat(backend_client, "first", "s1")
    await _chat(backend_client, "second", "s2")
    listed = await backend_client.get(
        "/api/v1/monitor/messages", params={"flow_id": PROMPT_ECHO, "session_id": "s1"}
    )
    assert listed.status_code == 200
    messages = listed.json()
    assert [m["sender"] for m in messages] == ["User", "Machine"]
    assert messages[0]["text"] == "first"
    assert messages[1]["text"] == "You are terse. Question: first"
    assert {m["session_id"] for m in messages} == {"s1"}
    machine = await backend_client.get(
        "/api/v1/monitor/messages", params={"flow_id": PROMPT_ECHO, "sender": "Machine"}
    )
    assert len(machine.json()) == 2
    desc = await backend_client.get(
        "/api/v1/monitor/messages", params={"session_id": "s1", "order": "DESC"}
    )
    assert [m["sender"] for m in desc.json()] == ["Machine", "User"]


async def test_monitor_message_properties_have_langflows_keys(client: httpx.AsyncClient) -> None:
    run = await client.post("/api/v1/run/prompt-echo", json={"input_value": "q", "session_id": "p"})
    answered = run.json()["outputs"][0]["outputs"][0]["results"]["message"]["properties"]
    listed = (await client.get("/api/v1/monitor/messages", params={"session_id": "p"})).json()
    # Langflow's MessageResponse carries the same properties object as a run result.
    assert listed[-1]["properties"] == answered
    assert set(listed[0]["properties"]) == set(answered)


async def test_a_run_without_session_id_uses_the_flow_id(backend_client: httpx.AsyncClient) -> None:
    await _chat(backend_client, "no session")
    session = await backend_client.get(f"/api/v1/sessions/{PROMPT_ECHO}")
    assert session.status_code == 200
    assert session.json()["messages"][0]["text"] == "no session"


async def test_sessions_read_and_clear(backend_client: httpx.AsyncClient) -> None:
    await _chat(backend_client, "hello", "mine")
    read = await backend_client.get("/api/v1/sessions/mine")
    assert next(m["text"] for m in read.json()["messages"]) == "hello"
    cleared = await backend_client.delete("/api/v1/sessions/mine")
    assert cleared.json() == {"session_id": "mine", "deleted": 2}
    assert (await backend_client.get("/api/v1/sessions/mine")).status_code == 404
    assert (await backend_client.delete("/api/v1/sessions/mine")).status_code == 404


async def test_monitor_deletes_a_session(backend_client: httpx.AsyncClient) -> None:
    await _chat(backend_client, "bye", "gone")
    deleted = await backend_client.delete("/api/v1/monitor/messages/session/gone")
    assert deleted.status_code == 204
    left = await backend_client.get("/api/v1/monitor/messages", params={"session_id": "gone"})
    assert left.json() == []


async def test_bad_monitor_filters_are_422(backend_client: httpx.AsyncClient) -> None:
    bad_order = await backend_client.get("/api/v1/monitor/messages", params={"order": "UP"})
    assert bad_order.status_code == 422
    bad_flow = await backend_client.get("/api/v1/monitor/messages", params={"flow_id": "x"})
    assert bad_flow.status_code == 422


async def test_runs_keep_sessions_for_the_flow_ttl_in_redis(
    pg_client: httpx.AsyncClient, redis_prefix: str
) -> None:
    patched = await pg_client.patch(f"/api/v1/flows/{PROMPT_ECHO}", json={"session_ttl": 30})
    assert patched.json()["session_ttl"] == 30
    await _chat(pg_client, "short-lived", "ttl")
    redis_client = connect(TEST_REDIS_URL)
    try:
        key = f"{redis_prefix}messages:{PROMPT_ECHO}:ttl"
        assert 20_000 < await redis_client.pttl(key) <= 30_000
        await pg_client.patch(f"/api/v1/flows/{PROMPT_ECHO}", json={"session_ttl": None})
        await _chat(pg_client, "default again", "ttl")
        assert 1_790_000 < await redis_client.pttl(key) <= 1_800_000
    finally:
        await redis_client.aclose()


async def test_monitor_lists_session_ids(backend_client: httpx.AsyncClient) -> None:
    await _chat(backend_client, "1", "alpha")
    await _chat(backend_client, "2", "beta")
    listed = await backend_client.get(
        "/api/v1/monitor/messages/sessions", params={"flow_id": PROMPT_ECHO}
    )
    assert listed.json() == ["alpha", "beta"]
