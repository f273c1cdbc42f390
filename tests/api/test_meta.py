"""Metadata endpoints, the OpenAPI document and /docs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from flowserve.api.openapi import spec_json
from flowserve.api.routes import OPERATIONS, build_routes
from tests.conftest import RESPONSES

OPENAPI_FILE = Path(__file__).parents[2] / "openapi" / "openapi.json"


async def test_version_names_the_package_and_langflow_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/version")
    assert response.status_code == 200
    body = response.json()
    assert body["package"] == "flowserve"
    assert body["langflow_api_version"] == "1.13.0"
    assert set(json.loads((RESPONSES / "version.json").read_text())) <= set(body)


async def test_config_has_langflows_keys_clients_read(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/config")).json()
    langflow = json.loads((RESPONSES / "config.json").read_text())
    for key in (
        "feature_flags",
        "max_file_size_upload",
        "event_delivery",
        "webhook_auth_enable",
        "default_folder_name",
        "auto_saving",
        "health_check_max_retries",
    ):
        assert key in body, key
        assert type(body[key]) is type(langflow[key]), key
    assert body["event_delivery"] == "streaming"
    assert body["backend"] == "embedded"


async def test_config_has_every_key_langflow_answers_with_the_same_type(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/v1/config")).json()
    langflow = json.loads((RESPONSES / "config.json").read_text())
    for key, value in langflow.items():
        assert key in body, key
        assert type(body[key]) is type(value), key
    assert set(langflow["feature_flags"]) <= set(body["feature_flags"])


async def test_all_lists_exactly_the_registered_components(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/all")).json()
    types = {name for category in body.values() for name in category}
    registry = client._transport.app.state.services.registry  # type: ignore[attr-defined]
    assert types == set(registry)
    prompt = body["models_and_agents"]["Prompt"]
    assert prompt["display_name"] == "Prompt Template"
    assert "template" in prompt["template"]
    assert prompt["outputs"][0]["name"] == "prompt"
    chat_output = body["input_output"]["ChatOutput"]
    assert chat_output["template"]["sender_name"]["value"] == "AI"


async def test_all_lists_the_loop_and_starter_project_components(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/v1/all")).json()
    types = {name for category in body.values() for name in category}
    assert {
        "LoopComponent",
        "Prompt Template",
        "BatchRunComponent",
        "SQLComponent",
        "ArXivComponent",
        "AssemblyAITranscriber",
    } <= types
    loop = body["flow_controls"]["LoopComponent"]
    assert [(o["name"], o["allows_loop"]) for o in loop["outputs"]] == [
        ("item", True),
        ("done", False),
    ]


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/health_check")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert set(ready.json()["stores"]) >= {"flows", "messages"}


async def test_unknown_route_is_a_404_with_our_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_docs_render_with_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text  # nothing fetched from the internet
    script = await client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    css = await client.get("/docs/static/swagger-ui.css")
    assert css.status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/run/{flow}" in spec["paths"]


def test_committed_openapi_file_is_current() -> None:
    assert OPENAPI_FILE.read_bytes() == spec_json(), "openapi/openapi.json is stale: make openapi"


def test_every_route_is_in_the_openapi_document() -> None:
    spec = json.loads(OPENAPI_FILE.read_text())
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    for op in OPERATIONS:
        if op.include_in_schema:
            assert (op.method, op.path) in documented, f"{op.method} {op.path} undocumented"
    served = {getattr(r, "path", "") for r in build_routes()}
    assert {p for _, p in documented} <= served
