"""API keys as a user meets them: the three ways to present one, the errors, key
management, flow restrictions, public flows, rate limits and the startup rule."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowserve.api.auth import guard, may_touch
from flowserve.api.errors import EXCEPTION_HANDLERS
from flowserve.api.spec import Operation
from flowserve.app import create_app
from flowserve.bootstrap import open_services
from flowserve.settings import Settings, SettingsError
from tests.api.authed import (
    ADMIN,
    BOOTSTRAP_KEY,
    HELLO,
    PROMPT_ECHO,
    AuthedApp,
    auth_settings,
    authed_app,
)
from tests.conftest import FLOWS

PUBLIC_FLOW = "7d0c1f8e-5b0e-4a52-9d35-6a8f3e2b1c40"
OPEN_HOOK = "1c8b2e65-4a65-4c1f-9b4f-8d2e3f4a5b6c"


def write_public_flow(flows_dir: Path) -> None:
    document = json.loads((FLOWS / "hello-world.json").read_text())
    document.update(id=PUBLIC_FLOW, name="public-hello", access_type="PUBLIC")
    (flows_dir / "public-hello.json").write_text(json.dumps(document))


@pytest.fixture
def settings(flows_dir: Path) -> Settings:
    write_public_flow(flows_dir)
    return auth_settings(flows_dir)


@pytest.fixture
async def authed(settings: Settings) -> AsyncIterator[AuthedApp]:
    async with authed_app(settings) as app:
        yield app


async def run(authed: AuthedApp, flow: str = HELLO, **kwargs: Any) -> httpx.Response:
    return await authed.client.post(f"/api/v1/run/{flow}", json={"input_value": "hi"}, **kwargs)


# -- presenting a key ------------------------------------------------------------


async def test_key_is_accepted_in_header_query_and_bearer_forms(authed: AuthedApp) -> None:
    key = (await authed.create_key(name="forms", scopes=["execute"]))["api_key"]
    by_header = await run(authed, headers={"x-api-key": key})
    by_query = await run(authed, params={"x-api-key": key})
    by_bearer = await run(authed, headers={"Authorization": f"Bearer {key}"})
    lowercase_bearer = await run(authed, headers={"authorization": f"bearer {key}"})
    for response in (by_header, by_query, by_bearer, lowercase_bearer):
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


async def test_missing_key_is_401_saying_how_to_send_one(authed: AuthedApp) -> None:
    response = await run(authed)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "missing_api_key"
    assert "x-api-key" in body["detail"]
    assert "Bearer" in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_key_is_401_and_never_echoed(authed: AuthedApp) -> None:
    guess = "fs_" + "A" * 43
    for kwargs in (
        {"headers": {"x-api-key": guess}},
        {"params": {"x-api-key": guess}},
        {"headers": {"Authorization": f"Bearer {guess}"}},
    ):
        response = await run(authed, **kwargs)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert guess not in response.text
        assert "A" * 10 not in response.text


async def test_missing_scope_is_403_naming_the_scope(authed: AuthedApp) -> None:
    key = (await authed.create_key(name="reader", scopes=["read"]))["api_key"]
    response = await run(authed, headers={"x-api-key": key})
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert "'execute'" in response.json()["detail"]


async def test_admin_scope_implies_every_other(authed: AuthedApp) -> None:
    key = (await authed.create_key(name="admin", scopes=["admin"]))["api_key"]
    assert (await run(authed, headers={"x-api-key": key})).status_code == 200
    config = await authed.client.get("/api/v1/config", headers={"x-api-key": key})
    assert config.status_code == 200
    assert config.json()["authz_enabled"] is True


async def test_open_endpoints_need_no_key(authed: AuthedApp) -> None:
    for path in ("/health", "/health_check", "/api/v1/version", "/docs", "/openapi.json"):
        assert (await authed.client.get(path)).status_code == 200, path


# -- managing keys ---------------------------------------------------------------


async def test_created_key_is_shown_once_then_listed_masked(authed: AuthedApp) -> None:
    created = await authed.create_key(name="ci", scopes=["read", "execute"])
    key = created["api_key"]
    assert key.startswith("fs_")
    assert len(key) >= 40
    assert created["prefix"] == key[:8]
    assert created["scopes"] == ["read", "execute"]
    assert created["is_active"] is True
    listing = await authed.client.get("/api/v1/api_key/", headers=ADMIN)
    assert listing.status_code == 200
    body = listing.json()
    assert body["total_count"] == 1
    (listed,) = body["api_keys"]
    assert listed["id"] == created["id"]
    assert listed["name"] == "ci"
    assert listed["api_key"].startswith(key[:8])
    assert listed["api_key"].endswith("*")
    assert key not in listing.text


async def test_default_scopes_are_read_and_execute(authed: AuthedApp) -> None:
    created = await authed.create_key(name="defaults")
    assert created["scopes"] == ["read", "execute"]


async def test_usage_is_recorded_on_the_key(authed: AuthedApp) -> None:
    created = await authed.create_key(name="used", scopes=["execute"])
    assert created["last_used_at"] is None
    assert (await run(authed, headers={"x-api-key": created["api_key"]})).status_code == 200
    await authed.app.state.services.access.aclose()  # flushes the batched usage
    listing = (await authed.client.get("/api/v1/api_key/", headers=ADMIN)).json()
    (listed,) = listing["api_keys"]
    assert listed["total_uses"] == 1
    assert listed["last_used_at"] is not None


async def test_revoked_key_stops_working_at_once(authed: AuthedApp) -> None:
    created = await authed.create_key(name="soon revoked", scopes=["execute"])
    headers = {"x-api-key": created["api_key"]}
    assert (await run(authed, headers=headers)).status_code == 200
    deleted = await authed.client.delete(f"/api/v1/api_key/{created['id']}", headers=ADMIN)
    assert deleted.status_code == 200
    assert deleted.json() == {"detail": "API Key deleted"}
    response = await run(authed, headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    listing = (await authed.client.get("/api/v1/api_key/", headers=ADMIN)).json()
    assert listing["api_keys"][0]["is_active"] is False


async def test_revoking_an_unknown_key_is_404(authed: AuthedApp) -> None:
    response = await authed.client.delete("/api/v1/api_key/nope", headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["code"] == "api_key_not_found"


async def test_expired_key_is_401_saying_when_it_expired(authed: AuthedApp) -> None:
    key = await authed.store_key(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    response = await run(authed, headers={"x-api-key": key})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_key_with_a_lifetime_reports_its_expiry(authed: AuthedApp) -> None:
    created = await authed.create_key(name="short", expires_in=3600)
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert (await run(authed, headers={"x-api-key": created["api_key"]})).status_code == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"scopes": ["root"]}, "scopes"),
        ({"scopes": []}, "at least one scope"),
        ({"flows": []}, "at least one flow"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "future"),
        ({"expires_at": "2099-01-01T00:00:00"}, "timezone"),
        ({"expires_at": "2099-01-01T00:00:00Z", "expires_in": 60}, "not both"),
        ({"expires_in": 0}, "expires_in"),
        ({"name": 5}, "name"),
    ],
)
async def test_invalid_key_requests_are_422_naming_the_problem(
    authed: AuthedApp, body: dict[str, Any], words: str
) -> None:
    response = await authed.client.post("/api/v1/api_key/", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]
    assert (await authed.client.get("/api/v1/api_key/", headers=ADMIN)).json()["total_count"] == 0


async def test_langflows_create_body_is_accepted(authed: AuthedApp) -> None:
    # Langflow's frontend and clients send their own fields; a key is still generated here.
    created = await authed.create_key(name="from langflow", api_key="chosen", total_uses=0)
    assert created["api_key"] != "chosen"


async def test_only_admin_keys_manage_keys(authed: AuthedApp) -> None:
    key = (await authed.create_key(name="writer", scopes=["read", "execute", "write"]))["api_key"]
    response = await authed.client.post(
        "/api/v1/api_key/", json={"scopes": ["admin"]}, headers={"x-api-key": key}
    )
    assert response.status_code == 403


# -- flow restrictions -------------------------------------------------------------


async def test_key_restricted_by_endpoint_name_runs_that_flow_by_id_too(
    authed: AuthedApp,
) -> None:
    key = (await authed.create_key(name="one flow", flows=["prompt-echo"]))["api_key"]
    headers = {"x-api-key": key}
    assert (await run(authed, "prompt-echo", headers=headers)).status_code == 200
    assert (await run(authed, PROMPT_ECHO, headers=headers)).status_code == 200
    other = await run(authed, HELLO, headers=headers)
    assert other.status_code == 403
    assert other.json()["code"] == "flow_not_allowed"
    # An unknown flow is refused the same way: a restricted key cannot probe for flows.
    assert (await run(authed, "no-such-flow", headers=headers)).status_code == 403


# -- public flows ---------------------------------------------------------------------


async def test_public_flow_runs_without_a_key(authed: AuthedApp) -> None:
    response = await run(authed, PUBLIC_FLOW)
    assert response.status_code == 200
    assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


async def test_private_and_unknown_flows_stay_closed_without_a_key(authed: AuthedApp) -> None:
    assert (await run(authed, HELLO)).status_code == 401
    # Not 404: an anonymous caller learns nothing about which flows exist.
    assert (await run(authed, "no-such-flow")).status_code == 401


async def test_public_flow_exposes_nothing_but_its_run(authed: AuthedApp) -> None:
    for path in ("/api/v1/config", "/api/v1/all"):
        assert (await authed.client.get(path)).status_code == 401


async def test_public_flow_with_a_wrong_key_is_still_401(authed: AuthedApp) -> None:
    response = await run(authed, PUBLIC_FLOW, headers={"x-api-key": "fs_wrong"})
    assert response.status_code == 401


async def test_anonymous_runs_are_limited_per_client_address(flows_dir: Path) -> None:
    write_public_flow(flows_dir)
    async with authed_app(auth_settings(flows_dir, rate_limit_per_ip=2)) as authed:
        assert (await run(authed, PUBLIC_FLOW)).status_code == 200
        assert (await run(authed, PUBLIC_FLOW)).status_code == 200
        limited = await run(authed, PUBLIC_FLOW)
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Callers with a key are counted per key, not per address.
        assert (await run(authed, PUBLIC_FLOW, headers=ADMIN)).status_code == 200


async def test_requests_are_limited_per_key(flows_dir: Path) -> None:
    async with authed_app(auth_settings(flows_dir, rate_limit_per_key=2)) as authed:
        one = (await authed.create_key(name="one"))["api_key"]
        two = (await authed.create_key(name="two"))["api_key"]
        for _ in range(2):
            assert (await run(authed, headers={"x-api-key": one})).status_code == 200
        limited = await run(authed, headers={"x-api-key": one})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert (await run(authed, headers={"x-api-key": two})).status_code == 200


async def test_floods_of_made_up_keys_are_limited_per_client_address(flows_dir: Path) -> None:
    async with authed_app(auth_settings(flows_dir, rate_limit_key_lookups=3)) as authed:
        for n in range(3):
            response = await run(authed, headers={"x-api-key": f"fs_guess_{n}"})
            assert response.status_code == 401
        limited = await run(authed, headers={"x-api-key": "fs_guess_again"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1


async def test_cached_keys_do_not_count_as_lookups(flows_dir: Path) -> None:
    async with authed_app(auth_settings(flows_dir, rate_limit_key_lookups=3)) as authed:
        key = (await authed.create_key(name="busy"))["api_key"]
        for _ in range(10):
            assert (await run(authed, headers={"x-api-key": key})).status_code == 200


# -- webhooks -------------------------------------------------------------------------


async def _webhook_echo(request: Request) -> Response:
    return JSONResponse({"principal": request.state.principal.name})


@pytest.fixture
async def webhook_client(
    settings: Settings, flows_dir: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """The auth guard around a webhook route, as the webhook module declares one."""
    # Any runnable flow will do: the guard decides before the handler runs.
    hook = json.loads((FLOWS / "hello-world.json").read_text())
    hook.update(id="0b9a1d54-3f54-4b0e-8a3e-7c1d2e3f4a5b", endpoint_name="closed-hook")
    (flows_dir / "closed-hook.json").write_text(json.dumps(hook))
    hook.update(id=OPEN_HOOK, endpoint_name="open-hook")
    (flows_dir / "open-hook.json").write_text(json.dumps(hook))
    changes = {"open_webhooks": "open-hook, some-other-flow", **getattr(request, "param", {})}
    webhook_settings = settings.replace(**changes)
    op = Operation(
        "POST",
        "/api/v1/webhook/{flow_id_or_name}",
        _webhook_echo,
        "Webhook",
        scope="execute",
        tag="webhook",
    )
    app = Starlette(
        routes=[Route(op.path, guard(op), methods=["POST"])], exception_handlers=EXCEPTION_HANDLERS
    )
    async with open_services(webhook_settings) as services:
        app.state.services = services
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowserve") as client:
            yield client


async def test_webhook_needs_an_execute_key_by_default(webhook_client: httpx.AsyncClient) -> None:
    assert (await webhook_client.post("/api/v1/webhook/closed-hook", json={})).status_code == 401
    response = await webhook_client.post(
        "/api/v1/webhook/closed-hook", json={}, headers={"x-api-key": BOOTSTRAP_KEY}
    )
    assert response.status_code == 200


async def test_listed_flows_webhooks_need_no_key(webhook_client: httpx.AsyncClient) -> None:
    # Listed by endpoint name, called by name and by id.
    for ref in ("open-hook", OPEN_HOOK):
        response = await webhook_client.post(f"/api/v1/webhook/{ref}", json={})
        assert response.status_code == 200
        assert response.json() == {"principal": "anonymous"}


@pytest.mark.parametrize("webhook_client", [{"webhook_auth": False}], indirect=True)
async def test_webhook_auth_can_be_turned_off_for_every_flow(
    webhook_client: httpx.AsyncClient,
) -> None:
    assert (await webhook_client.post("/api/v1/webhook/closed-hook", json={})).status_code == 200


# -- startup ----------------------------------------------------------------------------


async def test_server_refuses_to_start_without_any_key(flows_dir: Path) -> None:
    app = create_app(auth_settings(flows_dir, api_key=""))
    with pytest.raises(SettingsError, match="FLOWSERVE_API_KEY"):
        async with app.router.lifespan_context(app):
            pass


async def test_server_starts_open_when_auth_is_off_explicitly(flows_dir: Path) -> None:
    app = create_app(auth_settings(flows_dir, api_key="", auth="off"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(f"/api/v1/run/{HELLO}", json={})
            assert response.status_code == 200


def test_langflow_api_key_is_an_alias_for_the_bootstrap_key() -> None:
    settings = Settings.from_mapping({"LANGFLOW_API_KEY": "fs_from_langflow"})
    assert settings.api_key == "fs_from_langflow"


async def test_restricted_key_cannot_reach_routes_spanning_every_flow(
    authed: AuthedApp,
) -> None:
    key = (await authed.create_key(name="one flow", scopes=["read"], flows=[HELLO]))["api_key"]
    # Projects hold every flow's names; the flow listing filters instead (test_auth_matrix).
    response = await authed.client.get("/api/v1/projects/", headers={"x-api-key": key})
    assert response.status_code == 403
    assert "restricted to some flows" in response.json()["detail"]
    assert (
        await authed.client.get(f"/api/v1/flows/{HELLO}", headers={"x-api-key": key})
    ).status_code == 200
    assert (
        await authed.client.get("/api/v1/config", headers={"x-api-key": key})
    ).status_code == 200


async def test_handlers_can_ask_which_flows_the_caller_may_touch(
    settings: Settings, flows_dir: Path
) -> None:
    async def visible(request: Request) -> Response:
        flows = request.app.state.services.flows
        records = [await flows.get(ref) for ref in (HELLO, PROMPT_ECHO)]
        return JSONResponse([r.id for r in records if r is not None and may_touch(request, r)])

    op = Operation(
        "GET", "/api/v1/visible", visible, "Visible", scope="read", tag="t", filters_flows=True
    )
    app = Starlette(routes=[Route(op.path, guard(op))], exception_handlers=EXCEPTION_HANDLERS)
    async with open_services(settings) as services:
        app.state.services = services
        _, restricted = await services.access.create_key(
            name="one", scopes=["read"], flows=["prompt-echo"]
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            one = await client.get(op.path, headers={"x-api-key": restricted})
            every = await client.get(op.path, headers=ADMIN)
    assert one.json() == [PROMPT_ECHO]
    assert every.json() == [HELLO, PROMPT_ECHO]
