"""ETag and If-Match on a flow, over HTTP on every backend: lost updates become 412s."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from tests.conftest import FLOWS

PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
URL = f"/api/v1/flows/{PROMPT_ECHO}"


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FLOWS / "prompt-echo.json").read_text())
    doc.pop("folder_id", None)
    doc.update(changes)
    return doc


async def read(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    response = await client.get(URL)
    assert response.status_code == 200
    return response.json(), response.headers["etag"]


def assert_refused(response: httpx.Response, current: str | None) -> None:
    assert response.status_code == 412, response.text
    body = response.json()
    assert body["code"] == "flow_changed"
    assert "If-Match" in body["detail"]
    assert response.headers.get("etag") == current


async def test_patch_with_the_current_etag_applies_and_a_stale_one_is_412(
    backend_client: httpx.AsyncClient,
) -> None:
    before, tag = await read(backend_client)
    assert tag.startswith('"')
    assert tag.endswith('"')
    first = await backend_client.patch(URL, json={"description": "one"}, headers={"If-Match": tag})
    assert first.status_code == 200, first.text
    new_tag = first.headers["etag"]
    assert new_tag != tag
    assert first.json()["description"] == "one"
    # A second writer still holding the first ETag would overwrite "one": refused.
    lost = await backend_client.patch(URL, json={"description": "two"}, headers={"If-Match": tag})
    assert_refused(lost, new_tag)
    after, read_tag = await read(backend_client)
    assert (after["description"], read_tag) == ("one", new_tag)
    assert before["description"] != "one"


async def test_without_if_match_the_last_writer_wins(backend_client: httpx.AsyncClient) -> None:
    _, tag = await read(backend_client)
    for text in ("one", "two"):
        response = await backend_client.patch(URL, json={"description": text})
        assert response.status_code == 200
    body, now = await read(backend_client)
    assert body["description"] == "two"
    assert now != tag


async def test_put_honours_if_match_and_star_needs_an_existing_flow(
    backend_client: httpx.AsyncClient,
) -> None:
    _, tag = await read(backend_client)
    replaced = await backend_client.put(
        URL, json=document(description="put"), headers={"If-Match": tag}
    )
    assert replaced.status_code == 200, replaced.text
    stale = await backend_client.put(URL, json=document(description="x"), headers={"If-Match": tag})
    assert_refused(stale, replaced.headers["etag"])
    star = await backend_client.put(
        URL, json=document(description="star"), headers={"If-Match": "*"}
    )
    assert star.status_code == 200
    assert star.json()["description"] == "star"

    missing = str(uuid.uuid4())
    refused = await backend_client.put(
        f"/api/v1/flows/{missing}",
        json=document(id=missing, endpoint_name=None),
        headers={"If-Match": "*"},
    )
    assert_refused(refused, None)
    assert "does not exist" in refused.json()["detail"]
    assert (await backend_client.get(f"/api/v1/flows/{missing}")).status_code == 404
    fresh = document(id=missing, endpoint_name=None)
    created = await backend_client.put(f"/api/v1/flows/{missing}", json=fresh)
    assert created.status_code == 201
    fetched = await backend_client.get(f"/api/v1/flows/{missing}")
    assert fetched.headers["etag"] == created.headers["etag"]


async def test_if_match_compares_strongly_and_accepts_a_list(
    backend_client: httpx.AsyncClient,
) -> None:
    _, tag = await read(backend_client)
    for header in (f"W/{tag}", '"not-ours"', '"1.2"', '"999999999.99999999999999999"'):
        refused = await backend_client.patch(
            URL, json={"description": "x"}, headers={"If-Match": header}
        )
        assert_refused(refused, tag)
    listed = await backend_client.patch(
        URL, json={"description": "listed"}, headers={"If-Match": f'"1.2", {tag}'}
    )
    assert listed.status_code == 200
    assert listed.json()["description"] == "listed"


async def test_if_match_on_an_unknown_flow_is_404(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.patch(
        f"/api/v1/flows/{uuid.uuid4()}", json={"description": "x"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 404
    assert response.json()["detail"]


async def test_of_writers_holding_the_same_etag_exactly_one_wins(
    backend_client: httpx.AsyncClient,
) -> None:
    _, tag = await read(backend_client)
    responses = await asyncio.gather(
        *(
            backend_client.patch(URL, json={"description": f"w{i}"}, headers={"If-Match": tag})
            for i in range(6)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 412, 412, 412, 412, 412]
    (winner,) = [r for r in responses if r.status_code == 200]
    body, now = await read(backend_client)
    assert body["description"] == winner.json()["description"]
    assert now == winner.headers["etag"]
