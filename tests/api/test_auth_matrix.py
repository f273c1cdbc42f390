"""Every route of the API against every kind of caller, expectations derived from its scope.

A new route is covered the moment it is added to ``api.routes.OPERATIONS``:
its ``Operation.scope`` says who may call it, and this table checks that the
server agrees for no key, a wrong key, each scope, an expired key, a revoked
key, and keys restricted to this flow or to another one.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowserve.access import generate_key
from flowserve.api.auth import flow_param
from flowserve.api.routes import OPERATIONS
from flowserve.api.spec import Operation
from flowserve.settings import Settings
from tests.api.authed import (
    ADMIN,
    BOOTSTRAP_KEY,
    HELLO,
    PROMPT_ECHO,
    AuthedApp,
    auth_settings,
    authed_app,
)
from tests.conftest import FLOWS, TEST_REDIS_URL

SCOPES = ("read", "execute", "write", "admin")
SCENARIOS = (
    "no key",
    "wrong key",
    "bootstrap",
    *SCOPES,
    "expired",
    "revoked",
    "restricted to this flow",
    "restricted to another flow",
)
_PARAM = re.compile(r"\{([a-zA-Z_]+)(?::[^}]*)?\}")


@pytest.fixture(params=["embedded", "postgres"])
def settings(request: pytest.FixtureRequest, flows_dir: Path) -> Settings:
    """Keys in SQLite with in-process limits, or in PostgreSQL with Redis."""
    embedded = auth_settings(flows_dir)
    if request.param == "embedded":
        return embedded
    return embedded.replace(
        database_url=request.getfixturevalue("clean_pg"),
        redis_url=TEST_REDIS_URL,
        redis_prefix=request.getfixturevalue("redis_prefix"),
    )


@pytest.fixture
async def authed(settings: Settings) -> AsyncIterator[AuthedApp]:
    async with authed_app(settings) as app:
        yield app


async def key_for(authed: AuthedApp, scenario: str) -> str | None:
    if scenario == "no key":
        return None
    if scenario == "wrong key":
        return generate_key()
    if scenario == "bootstrap":
        return BOOTSTRAP_KEY
    if scenario in SCOPES:
        return str((await authed.create_key(name=scenario, scopes=[scenario]))["api_key"])
    if scenario == "expired":
        return await authed.store_key(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    if scenario == "revoked":
        created = await authed.create_key(name="revoked", scopes=list(SCOPES))
        deleted = await authed.client.delete(
            f"/api/v1/api_key/{created['id']}", headers={"x-api-key": BOOTSTRAP_KEY}
        )
        assert deleted.status_code == 200
        return str(created["api_key"])
    flow = HELLO if scenario == "restricted to this flow" else PROMPT_ECHO
    created = await authed.create_key(name=scenario, scopes=list(SCOPES), flows=[flow])
    return str(created["api_key"])


def expected(op: Operation, scenario: str) -> int | None:
    """401 or 403 when the call must be refused, None when auth must let it through."""
    if op.scope == "public":
        return None
    if scenario in ("no key", "wrong key", "expired", "revoked"):
        return 401
    if scenario == "bootstrap":
        return None
    if scenario.startswith("restricted"):
        if op.scope == "admin":
            return 403  # a flow-restricted key could otherwise mint an unrestricted one
        if flow_param(op.path):
            return 403 if scenario == "restricted to another flow" else None
        # Routes spanning every flow, unless their handler filters by the caller.
        return None if op.filters_flows or op.tag in ("meta", "health", "docs") else 403
    return None if scenario in (op.scope, "admin") else 403


def concrete_path(op: Operation) -> str:
    def fill(match: re.Match[str]) -> str:
        return HELLO if match.group(1).startswith("flow") else str(uuid.uuid4())

    return _PARAM.sub(fill, op.path)


def ordered(operations: list[Operation]) -> list[Operation]:
    # Destructive calls last, so they cannot remove what later calls use.
    return sorted(operations, key=lambda op: op.method == "DELETE")


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_every_route_answers_each_caller_as_its_scope_says(
    authed: AuthedApp, scenario: str
) -> None:
    key = await key_for(authed, scenario)
    headers = {"x-api-key": key} if key is not None else {}
    wrong: list[str] = []
    for op in ordered(OPERATIONS):
        if op.method == "GET" and op.path.endswith("/sse"):
            continue  # an MCP SSE stream never ends; tests/api/test_mcp.py covers its auth
        body = {} if op.method in ("POST", "PUT", "PATCH") else None
        response = await authed.client.request(
            op.method, concrete_path(op), headers=headers, json=body
        )
        want = expected(op, scenario)
        got = response.status_code
        if want is None and got in (401, 403):
            wrong.append(f"{op.method} {op.path}: {got} {response.text}, expected access")
        elif want is not None and got != want:
            wrong.append(f"{op.method} {op.path}: {got}, expected {want}")
        if got in (401, 403):
            error = response.json()
            assert set(error) == {"detail", "code", "request_id"}
            assert error["detail"]
            if key is not None:
                assert key not in response.text
    assert not wrong, "\n".join(wrong)


# ---- What a flow-restricted key sees on the routes that filter by the caller -----------------


async def _chat(authed: AuthedApp, flow: str, session_id: str) -> None:
    response = await authed.client.post(
        f"/api/v1/run/{flow}",
        json={"input_value": f"hi {session_id}", "session_id": session_id},
        headers={"x-api-key": BOOTSTRAP_KEY},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("listed_as", ["id", "endpoint name"])
async def test_restricted_key_sees_only_its_flows_data(authed: AuthedApp, listed_as: str) -> None:
    for flow, session in ((HELLO, "s-hello"), (PROMPT_ECHO, "s-echo")):
        await _chat(authed, flow, session)
        await _chat(authed, flow, "shared")
    ref = PROMPT_ECHO if listed_as == "id" else "prompt-echo"
    key = await authed.create_key(name="echo only", scopes=["read", "write"], flows=[ref])
    mine = {"x-api-key": str(key["api_key"])}
    get = authed.client.get

    listed = await get("/api/v1/flows/", headers=mine)
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()] == [PROMPT_ECHO]
    paged = (await get("/api/v1/flows/", params={"get_all": "false"}, headers=mine)).json()
    assert (paged["total"], [f["id"] for f in paged["items"]]) == (1, [PROMPT_ECHO])
    headers_only = await get("/api/v1/flows/", params={"header_flows": "true"}, headers=mine)
    assert [f["id"] for f in headers_only.json()] == [PROMPT_ECHO]
    assert (await get("/api/v1/flows/", params={"name": "hello-world"}, headers=mine)).json() == []

    messages = (await get("/api/v1/monitor/messages", headers=mine)).json()
    assert messages
    assert {m["flow_id"] for m in messages} == {PROMPT_ECHO}
    assert {m["session_id"] for m in messages} == {"s-echo", "shared"}
    other = {"session_id": "s-hello"}
    assert (await get("/api/v1/monitor/messages", params=other, headers=mine)).json() == []
    sessions = await get("/api/v1/monitor/messages/sessions", headers=mine)
    assert sessions.json() == ["s-echo", "shared"]
    shared = (await get("/api/v1/sessions/shared", headers=mine)).json()
    assert {m["flow_id"] for m in shared["messages"]} == {PROMPT_ECHO}
    assert (await get("/api/v1/sessions/s-hello", headers=mine)).status_code == 404

    # Naming another flow in a query parameter or a body is refused, as in a path.
    for path, params in (
        ("/api/v1/monitor/messages", {"flow_id": HELLO}),
        ("/api/v1/monitor/messages/sessions", {"flow_id": HELLO}),
        ("/api/v1/sessions/shared", {"flow_id": HELLO}),
        ("/api/v1/flows/download/", {"ids": HELLO}),
    ):
        refused = await get(path, params=params, headers=mine)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["detail"] == f"This API key is not allowed to access flow {HELLO}"
    unknown = str(uuid.uuid4())
    probe = await get("/api/v1/monitor/messages", params={"flow_id": unknown}, headers=mine)
    assert probe.status_code == 403  # unknown flows alike: no probing for what exists
    batch = await authed.client.request(
        "DELETE", "/api/v1/flows/", json=[PROMPT_ECHO, HELLO], headers=mine
    )
    assert batch.status_code == 403
    assert (await get("/api/v1/flows/download/", params={"ids": PROMPT_ECHO}, headers=mine)).json()[
        "id"
    ] == PROMPT_ECHO

    # Deleting a session reaches only this key's flows; the other flow keeps its messages.
    cleared = await authed.client.delete("/api/v1/sessions/shared", headers=mine)
    assert cleared.status_code == 200
    assert cleared.json()["deleted"] == 2
    gone = await authed.client.delete("/api/v1/monitor/messages/session/s-hello", headers=mine)
    assert gone.status_code == 204
    everything = (await get("/api/v1/monitor/messages", headers=ADMIN)).json()
    left = {(m["flow_id"], m["session_id"]) for m in everything}
    assert left == {(HELLO, "s-hello"), (HELLO, "shared"), (PROMPT_ECHO, "s-echo")}
    flows = (await get("/api/v1/flows/", headers=ADMIN)).json()
    assert {f["id"] for f in flows} == {HELLO, PROMPT_ECHO}


async def test_restricted_key_sees_only_its_flows_jobs(flows_dir: Path) -> None:
    shutil.copy(FLOWS / "webhook-echo.json", flows_dir)
    async with authed_app(auth_settings(flows_dir)) as authed:
        hook = await authed.client.post("/api/v1/webhook/webhook-echo", json={}, headers=ADMIN)
        assert hook.status_code == 202, hook.text
        job = f"/api/v1/jobs/{hook.json()['job_id']}"
        flow_id = json.loads((FLOWS / "webhook-echo.json").read_text())["id"]
        own = await authed.create_key(name="hook", scopes=["read"], flows=["webhook-echo"])
        seen = await authed.client.get(job, headers={"x-api-key": own["api_key"]})
        assert seen.status_code == 200
        assert seen.json()["flow_id"] == flow_id
        other = await authed.create_key(name="hello", scopes=["read", "execute"], flows=[HELLO])
        for method in ("GET", "DELETE"):
            refused = await authed.client.request(
                method, job, headers={"x-api-key": other["api_key"]}
            )
            assert refused.status_code == 403
            assert (
                refused.json()["detail"] == f"This API key is not allowed to access flow {flow_id}"
            )
