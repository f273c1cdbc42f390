"""U+0000 in any text a client sends: PostgreSQL's text and jsonb cannot hold it, so
it answered 500 "Database error (22021)". Every backend now answers the same 4xx,
and a lookup by a name containing one finds nothing (404)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.helpers import flow, node


def _flow(**changes: Any) -> dict[str, Any]:
    return {**flow(str(uuid.uuid4()), [node("ChatInput-a", "ChatInput")], []), **changes}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/flows/", _flow(name="a\u0000b")),
        ("/api/v1/flows/", _flow(description="a\u0000b")),
        (
            "/api/v1/flows/",
            flow(str(uuid.uuid4()), [node("ChatInput-a", "ChatInput", input_value="\u0000")], []),
        ),
        ("/api/v1/projects/", {"name": "p\u0000"}),
    ],
)
async def test_stored_text_with_nul_is_a_4xx_on_every_backend(
    backend_client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await backend_client.post(
        path, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    # The embedded store can keep it; PostgreSQL refuses it with a 422 that says why.
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert "NUL character" in response.json()["detail"]


async def test_nul_in_stored_text_is_a_422_on_postgres(pg_client: httpx.AsyncClient) -> None:
    response = await pg_client.post("/api/v1/flows/", json=_flow(name="a\u0000b"))
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "Text containing a NUL character (\\u0000) cannot be stored"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/flows/a%00b"), ("POST", "/api/v1/run/a%00b")],
)
async def test_lookup_by_a_name_with_nul_is_404(
    backend_client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await backend_client.request(method, path)
    assert response.status_code == 404
    assert response.json()["code"] == "flow_not_found"


async def test_filter_by_a_name_with_nul_is_not_a_500(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.get("/api/v1/flows/", params={"name": "a\u0000"})
    assert response.status_code in (200, 422)
