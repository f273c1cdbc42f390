"""/api/v1/projects/: Langflow's projects (folders) on every backend."""

from __future__ import annotations

import io
import zipfile

import httpx

from flowserve.store.base import DEFAULT_PROJECT_ID

PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"


async def test_a_default_project_holds_flows_saved_without_one(
    backend_client: httpx.AsyncClient,
) -> None:
    projects = (await backend_client.get("/api/v1/projects/")).json()
    assert [p["id"] for p in projects] == [DEFAULT_PROJECT_ID]
    default = (await backend_client.get(f"/api/v1/projects/{DEFAULT_PROJECT_ID}")).json()
    assert {f["id"] for f in default["flows"]} == {PROMPT_ECHO, HELLO}
    refused = await backend_client.delete(f"/api/v1/projects/{DEFAULT_PROJECT_ID}")
    assert refused.status_code == 409


async def test_create_move_rename_and_delete_a_project(backend_client: httpx.AsyncClient) -> None:
    created = await backend_client.post(
        "/api/v1/projects/", json={"name": "Team", "flows_list": [HELLO]}
    )
    assert created.status_code == 201
    project_id = created.json()["id"]
    clash = await backend_client.post("/api/v1/projects/", json={"name": "Team"})
    assert clash.status_code == 409
    flow = (await backend_client.get(f"/api/v1/flows/{HELLO}")).json()
    assert flow["folder_id"] == project_id
    renamed = await backend_client.patch(
        f"/api/v1/projects/{project_id}", json={"name": "Renamed", "flows": [PROMPT_ECHO]}
    )
    assert renamed.json()["name"] == "Renamed"
    listed = await backend_client.get("/api/v1/flows/", params={"folder_id": project_id})
    assert {f["id"] for f in listed.json()} == {HELLO, PROMPT_ECHO}
    assert (await backend_client.delete(f"/api/v1/projects/{project_id}")).status_code == 204
    assert (await backend_client.get(f"/api/v1/flows/{HELLO}")).status_code == 404
    run = await backend_client.post("/api/v1/run/prompt-echo", json={})
    assert run.status_code == 404
    missing = await backend_client.get(f"/api/v1/projects/{project_id}")
    assert missing.status_code == 404


async def test_a_flow_in_an_unknown_project_is_refused(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.patch(
        f"/api/v1/flows/{HELLO}", json={"folder_id": "00000000-0000-4000-8000-00000000dead"}
    )
    assert response.status_code == 404
    assert "Project" in response.json()["detail"]


async def test_project_download_then_upload_as_a_new_project(
    backend_client: httpx.AsyncClient,
) -> None:
    download = await backend_client.get(f"/api/v1/projects/download/{DEFAULT_PROJECT_ID}")
    assert download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert sorted(archive.namelist()) == ["Prompt Echo.json", "hello-world.json"]
    uploaded = await backend_client.post(
        "/api/v1/projects/upload/", files={"file": ("Backup.zip", download.content)}
    )
    assert uploaded.status_code == 201
    projects = (await backend_client.get("/api/v1/projects/")).json()
    backup = next(p for p in projects if p["name"] == "Backup")
    assert {f["folder_id"] for f in uploaded.json()} == {backup["id"]}


async def test_projects_cannot_form_a_parent_cycle(backend_client: httpx.AsyncClient) -> None:
    top = (await backend_client.post("/api/v1/projects/", json={"name": "top"})).json()
    mid = await backend_client.post(
        "/api/v1/projects/", json={"name": "mid", "parent_id": top["id"]}
    )
    low = await backend_client.post(
        "/api/v1/projects/", json={"name": "low", "parent_id": mid.json()["id"]}
    )
    for parent in (top["id"], low.json()["id"]):  # itself, then its grandchild
        response = await backend_client.patch(
            f"/api/v1/projects/{top['id']}", json={"parent_id": parent}
        )
        assert response.status_code == 422, response.text
        assert "child of its child" in response.json()["detail"]
    moved = await backend_client.patch(
        f"/api/v1/projects/{low.json()['id']}", json={"parent_id": top["id"]}
    )
    assert moved.status_code == 200
    assert moved.json()["parent_id"] == top["id"]
