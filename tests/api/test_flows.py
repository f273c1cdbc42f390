"""/api/v1/flows/: Langflow's flows API on every backend (embedded and Postgres + Redis)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import httpx

from tests.conftest import FLOWS

PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"


def flow_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FLOWS / "prompt-echo.json").read_text())
    document.update(id=str(uuid.uuid4()), endpoint_name=None, name="copy")
    document.update(changes)
    return document


def broken_document() -> dict[str, Any]:
    document = flow_document(endpoint_name="has space")
    document["data"]["nodes"][1]["data"]["type"] = "NoSuchComponent"
    return document


async def test_seeded_flows_are_listed(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.get("/api/v1/flows/")
    assert response.status_code == 200
    assert {f["id"] for f in response.json()} == {PROMPT_ECHO, HELLO}


async def test_create_then_read_and_run_by_endpoint_name(
    backend_client: httpx.AsyncClient,
) -> None:
    document = flow_document(endpoint_name="my-echo")
    created = await backend_client.post("/api/v1/flows/", json=document)
    assert created.status_code == 201
    body = created.json()
    assert body["id"] == document["id"]
    assert body["version"] == 1
    assert body["data"]["nodes"] == document["data"]["nodes"]
    assert body["folder_id"]  # the default project
    read = await backend_client.get(f"/api/v1/flows/{document['id']}")
    assert read.json()["endpoint_name"] == "my-echo"
    run = await backend_client.post("/api/v1/run/my-echo", json={"input_value": "x"})
    assert run.status_code == 200
    assert run.json()["session_id"] == document["id"]


async def test_invalid_flow_is_rejected_naming_each_problem_and_not_saved(
    backend_client: httpx.AsyncClient,
) -> None:
    document = broken_document()
    response = await backend_client.post("/api/v1/flows/", json=document)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "endpoint_name 'has space'" in detail
    assert "NoSuchComponent" in detail
    assert (await backend_client.get(f"/api/v1/flows/{document['id']}")).status_code == 404


async def test_endpoint_name_clash_is_a_409(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.post(
        "/api/v1/flows/", json=flow_document(endpoint_name="prompt-echo")
    )
    assert response.status_code == 409
    assert response.json()["code"] == "endpoint_name_taken"


async def test_put_upserts_by_id_201_then_200(backend_client: httpx.AsyncClient) -> None:
    document = flow_document()
    first = await backend_client.put(f"/api/v1/flows/{document['id']}", json=document)
    assert first.status_code == 201
    document["name"] = "changed"
    second = await backend_client.put(f"/api/v1/flows/{document['id']}", json=document)
    assert second.status_code == 200
    assert second.json()["name"] == "changed"
    assert second.json()["version"] == 2


async def test_patch_changes_only_the_given_fields(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.patch(
        f"/api/v1/flows/{PROMPT_ECHO}", json={"description": "new words", "endpoint_name": None}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "new words"
    assert body["endpoint_name"] is None
    assert body["name"] == "Prompt Echo"
    gone = await backend_client.post("/api/v1/run/prompt-echo", json={"input_value": "x"})
    assert gone.status_code == 404


async def test_patch_with_a_broken_graph_keeps_the_old_flow(
    backend_client: httpx.AsyncClient,
) -> None:
    broken = broken_document()["data"]
    response = await backend_client.patch(f"/api/v1/flows/{PROMPT_ECHO}", json={"data": broken})
    assert response.status_code == 422
    run = await backend_client.post("/api/v1/run/prompt-echo", json={"input_value": "still"})
    assert run.status_code == 200


async def test_an_update_is_served_by_the_next_run(backend_client: httpx.AsyncClient) -> None:
    before = await backend_client.post("/api/v1/run/prompt-echo", json={"input_value": "q"})
    assert "You are terse" in before.text
    document = json.loads((FLOWS / "prompt-echo.json").read_text())
    document["data"]["nodes"][1]["data"]["node"]["template"]["template"]["value"] = (
        "New: {question}"
    )
    updated = await backend_client.put(f"/api/v1/flows/{PROMPT_ECHO}", json=document)
    assert updated.status_code == 200
    after = await backend_client.post("/api/v1/run/prompt-echo", json={"input_value": "q"})
    assert "New: q" in after.text


async def test_pagination_and_filters(backend_client: httpx.AsyncClient) -> None:
    for name in ("b", "a"):
        await backend_client.post("/api/v1/flows/", json=flow_document(name=name))
    page = await backend_client.get("/api/v1/flows/", params={"get_all": "false", "size": 3})
    body = page.json()
    assert body["total"] == 4
    assert body["pages"] == 2
    assert [f["name"] for f in body["items"]] == ["a", "b", "hello-world"]
    named = await backend_client.get("/api/v1/flows/", params={"name": "a"})
    assert [f["name"] for f in named.json()] == ["a"]
    by_endpoint = await backend_client.get(
        "/api/v1/flows/", params={"endpoint_name": "prompt-echo"}
    )
    assert [f["id"] for f in by_endpoint.json()] == [PROMPT_ECHO]
    bad = await backend_client.get("/api/v1/flows/", params={"get_all": "false", "size": "0"})
    assert bad.status_code == 422
    # Langflow's get_all defaults to true: page and size alone still answer every flow.
    everything = await backend_client.get("/api/v1/flows/", params={"page": 1, "size": 3})
    assert isinstance(everything.json(), list)
    assert len(everything.json()) == 4


async def test_delete_one_and_many(backend_client: httpx.AsyncClient) -> None:
    deleted = await backend_client.delete(f"/api/v1/flows/{HELLO}")
    assert deleted.json() == {"message": "Flow deleted successfully"}
    assert (await backend_client.delete(f"/api/v1/flows/{HELLO}")).status_code == 404
    many = await backend_client.request(
        "DELETE", "/api/v1/flows/", json=[PROMPT_ECHO, str(uuid.uuid4())]
    )
    assert many.json() == {"deleted": 1}
    assert (await backend_client.get("/api/v1/flows/")).json() == []
    run = await backend_client.post(f"/api/v1/run/{PROMPT_ECHO}", json={})
    assert run.status_code == 404


async def test_upload_a_list_and_download_as_zip(backend_client: httpx.AsyncClient) -> None:
    documents = [flow_document(name="one"), flow_document(name="two")]
    files = {"file": ("flows.json", json.dumps(documents).encode(), "application/json")}
    uploaded = await backend_client.post("/api/v1/flows/upload/", files=files)
    assert uploaded.status_code == 201
    assert sorted(f["name"] for f in uploaded.json()) == ["one", "two"]
    ids = [d["id"] for d in documents]
    download = await backend_client.get("/api/v1/flows/download/", params={"ids": ids})
    assert download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert sorted(archive.namelist()) == ["one.json", "two.json"]
        again = json.loads(archive.read("one.json"))
    assert again["id"] in ids
    single = await backend_client.post("/api/v1/flows/download/", json=[ids[0]])
    assert single.json()["name"] == "one"


async def test_upload_with_one_invalid_flow_writes_none(backend_client: httpx.AsyncClient) -> None:
    good, bad = flow_document(name="good"), broken_document()
    files = {"file": ("flows.json", json.dumps({"flows": [good, bad]}).encode(), "text/plain")}
    response = await backend_client.post("/api/v1/flows/upload/", files=files)
    assert response.status_code == 422
    assert "flow 1" in response.json()["detail"]
    assert (await backend_client.get(f"/api/v1/flows/{good['id']}")).status_code == 404


async def test_upload_without_a_file_is_a_400(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.post("/api/v1/flows/upload/", files={"other": ("x", b"{}")})
    assert response.status_code == 400
    assert "file" in response.json()["detail"]


async def test_header_flows_leave_out_the_graph(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.get("/api/v1/flows/", params={"header_flows": "true"})
    headers = response.json()
    assert {h["id"] for h in headers} == {PROMPT_ECHO, HELLO}
    assert all("data" not in h for h in headers)


async def test_upload_with_an_endpoint_clash_writes_none(backend_client: httpx.AsyncClient) -> None:
    fine, clashing = flow_document(name="fine"), flow_document(endpoint_name="prompt-echo")
    files = {"file": ("flows.json", json.dumps([fine, clashing]).encode())}
    response = await backend_client.post("/api/v1/flows/upload/", files=files)
    assert response.status_code == 409
    assert (await backend_client.get(f"/api/v1/flows/{fine['id']}")).status_code == 404


async def test_a_flow_file_from_another_server_lands_in_a_project_here(
    backend_client: httpx.AsyncClient,
) -> None:
    foreign = "0b0b0b0b-0000-4000-8000-000000000000"
    document = flow_document(folder_id=foreign)
    pushed = await backend_client.put(f"/api/v1/flows/{document['id']}", json=document)
    assert pushed.status_code == 201
    assert pushed.json()["folder_id"] != foreign
    explicit = await backend_client.post("/api/v1/flows/", json=flow_document(folder_id=foreign))
    assert explicit.status_code == 404
