"""The files API over HTTP, on the directory and PostgreSQL backends: v2 (a key's own
files) and v1 (files of a flow), size limits, hostile names, and owner scoping."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.api.authed import auth_settings
from tests.api.filetools import Keys, open_keys, reader_flow, save_flow, upload
from tests.conftest import LiveServer


async def test_v2_upload_list_download_delete(file_keys: Keys) -> None:
    client = file_keys.client
    uploaded = await upload(client, file_keys.a, "notes.txt", b"hello files")
    assert set(uploaded) == {"id", "name", "path", "size", "provider"}
    assert uploaded["name"] == "notes"  # Langflow's name: without the extension
    assert uploaded["size"] == 11
    assert uploaded["path"] == f"{file_keys.a_id}/{uploaded['id']}.txt"

    listing = await client.get("/api/v2/files", headers=file_keys.a)
    assert listing.status_code == 200
    assert [(f["id"], f["path"], f["size"]) for f in listing.json()] == [
        (uploaded["id"], uploaded["path"], 11)
    ]
    assert listing.json()[0]["user_id"] == file_keys.a_id

    download = await client.get(f"/api/v2/files/{uploaded['id']}", headers=file_keys.a)
    assert download.status_code == 200
    assert download.content == b"hello files"
    assert download.headers["content-type"].startswith("text/plain")
    assert 'filename="notes.txt"' in download.headers["content-disposition"]
    assert download.headers["x-content-type-options"] == "nosniff"

    deleted = await client.delete(f"/api/v2/files/{uploaded['id']}", headers=file_keys.a)
    assert deleted.status_code == 200
    assert deleted.json() == {"detail": "File notes deleted successfully"}
    gone = await client.get(f"/api/v2/files/{uploaded['id']}", headers=file_keys.a)
    assert gone.status_code == 404
    assert gone.json()["code"] == "file_not_found"
    assert (await client.get("/api/v2/files", headers=file_keys.a)).json() == []


async def test_rename_and_batch_delete(file_keys: Keys) -> None:
    client = file_keys.client
    first = await upload(client, file_keys.a, "a.csv", b"x,y\n1,2\n")
    second = await upload(client, file_keys.a, "b.md", b"# b")
    renamed = await client.put(
        f"/api/v2/files/{first['id']}", params={"name": "totals"}, headers=file_keys.a
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "totals"
    assert renamed.json()["path"] == first["path"]
    download = await client.get(f"/api/v2/files/{first['id']}", headers=file_keys.a)
    assert 'filename="totals.csv"' in download.headers["content-disposition"]
    bad = await client.put(
        f"/api/v2/files/{first['id']}", params={"name": "../up"}, headers=file_keys.a
    )
    assert bad.status_code == 400

    batch = await client.request(
        "DELETE", "/api/v2/files/batch/", json=[first["id"], second["id"]], headers=file_keys.a
    )
    assert batch.status_code == 200, batch.text
    assert (await client.get("/api/v2/files", headers=file_keys.a)).json() == []
    again = await client.request(
        "DELETE", "/api/v2/files/batch/", json=[first["id"]], headers=file_keys.a
    )
    assert again.status_code == 404


async def test_a_key_sees_only_its_own_files_and_admin_sees_all(file_keys: Keys) -> None:
    client = file_keys.client
    mine = await upload(client, file_keys.a, "secret.txt", b"A's secret")
    theirs = await upload(client, file_keys.b, "other.txt", b"B's file")

    listed_by_b = (await client.get("/api/v2/files", headers=file_keys.b)).json()
    assert [f["id"] for f in listed_by_b] == [theirs["id"]]
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/api/v2/files/{mine['id']}", headers=file_keys.b)
        assert response.status_code == 404, (method, response.text)
        assert "secret" not in response.text
    renamed = await client.put(
        f"/api/v2/files/{mine['id']}", params={"name": "stolen"}, headers=file_keys.b
    )
    assert renamed.status_code == 404
    batch = await client.request(
        "DELETE", "/api/v2/files/batch/", json=[mine["id"]], headers=file_keys.b
    )
    assert batch.status_code == 404
    wiped = await client.delete("/api/v2/files", headers=file_keys.b)
    assert wiped.status_code == 200

    still = await client.get(f"/api/v2/files/{mine['id']}", headers=file_keys.a)
    assert still.content == b"A's secret"
    everyone = (await client.get("/api/v2/files", headers=file_keys.admin)).json()
    assert [f["id"] for f in everyone] == [mine["id"]]  # B's own file went with its wipe
    as_admin = await client.get(f"/api/v2/files/{mine['id']}", headers=file_keys.admin)
    assert as_admin.content == b"A's secret"


async def test_scopes_guard_the_files_routes(file_keys: Keys) -> None:
    client = file_keys.client
    reader = await file_keys.app.create_key(name="reader", scopes=["read"])
    headers = {"x-api-key": reader["api_key"]}
    refused = await client.post("/api/v2/files", files={"file": ("a.txt", b"a")}, headers=headers)
    assert refused.status_code == 403
    assert (await client.get("/api/v2/files", headers=headers)).status_code == 200
    assert (await client.get("/api/v2/files")).status_code == 401


async def test_missing_part_and_hostile_names_are_refused(file_keys: Keys) -> None:
    client = file_keys.client
    no_part = await client.post(
        "/api/v2/files", files={"other": ("a.txt", b"a")}, headers=file_keys.a
    )
    assert no_part.status_code == 400
    assert "'file'" in no_part.json()["detail"]
    not_multipart = await client.post("/api/v2/files", content=b"raw", headers=file_keys.a)
    assert not_multipart.status_code == 400
    for name in ("../../etc/passwd", "dir/x.txt", "..\\win.txt", "..", "\u202etxt.exe"):
        response = await client.post(
            "/api/v2/files", files={"file": (name, b"data")}, headers=file_keys.a
        )
        assert response.status_code == 400, (name, response.text)
        assert response.json()["detail"]
    assert (await client.get("/api/v2/files", headers=file_keys.a)).json() == []
    for probe in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", str(uuid.uuid4()), "x"):
        response = await client.get(f"/api/v2/files/{probe}", headers=file_keys.a)
        assert response.status_code == 404, probe


async def test_upload_over_the_limit_is_413_and_stores_nothing(
    flows_dir: Path, file_backend: dict[str, Any]
) -> None:
    async for k in open_keys(flows_dir, max_file_bytes=1000, **file_backend):
        big = await k.client.post(
            "/api/v2/files", files={"file": ("big.txt", b"x" * 5000)}, headers=k.a
        )
        assert big.status_code == 413, big.text
        assert "1000 bytes" in big.json()["detail"]
        assert (await k.client.get("/api/v2/files", headers=k.a)).json() == []
        fits = await k.client.post(
            "/api/v2/files", files={"file": ("ok.txt", b"x" * 1000)}, headers=k.a
        )
        assert fits.status_code == 201


def _multipart(name: str, content: bytes, boundary: str = "b0undary") -> bytes:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode()


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


async def test_chunked_upload_past_the_limit_is_cut_off_as_it_arrives(flows_dir: Path) -> None:
    """No Content-Length: the body is counted as it arrives, never held whole."""
    from flowserve.app import create_app

    settings = auth_settings(
        flows_dir, max_file_bytes=100_000, files_dir=str(flows_dir.parent / "up")
    )
    headers = {
        "content-type": "multipart/form-data; boundary=b0undary",
        "x-api-key": settings.api_key,
    }
    async with LiveServer(create_app(settings)) as server, httpx.AsyncClient() as http:
        big = await http.post(
            f"{server.url}/api/v2/files",
            content=_chunks(_multipart("big.txt", b"y" * 2_000_000)),
            headers=headers,
        )
        small = await http.post(
            f"{server.url}/api/v2/files",
            content=_chunks(_multipart("small.txt", b"y" * 50_000)),
            headers=headers,
        )
        listing = await http.get(f"{server.url}/api/v2/files", headers=headers)
    assert big.status_code == 413, big.text
    assert small.status_code == 201, small.text
    assert [f["size"] for f in listing.json()] == [50_000]


# ---- v1 --------------------------------------------------------------------------------


async def test_v1_flow_files_upload_list_download_delete(file_keys: Keys) -> None:
    client = file_keys.client
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    uploaded = await client.post(
        f"/api/v1/files/upload/{flow_id}",
        files={"file": ("data.json", b'{"a": 1}')},
        headers=file_keys.a,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json() == {"flowId": flow_id, "file_path": f"{flow_id}/data.json"}

    listed = await client.get(f"/api/v1/files/list/{flow_id}", headers=file_keys.a)
    assert listed.json() == {"files": ["data.json"]}
    # v1 files belong to their flow: not in the key's v2 listing.
    assert (await client.get("/api/v2/files", headers=file_keys.a)).json() == []
    download = await client.get(f"/api/v1/files/download/{flow_id}/data.json", headers=file_keys.a)
    assert download.status_code == 200
    assert download.content == b'{"a": 1}'
    assert download.headers["content-type"].startswith("application/json")

    # Another key may use the flow, not A's file in it.
    assert (await client.get(f"/api/v1/files/list/{flow_id}", headers=file_keys.b)).json() == {
        "files": []
    }
    other = await client.get(f"/api/v1/files/download/{flow_id}/data.json", headers=file_keys.b)
    assert other.status_code == 404
    clash = await client.post(
        f"/api/v1/files/upload/{flow_id}", files={"file": ("data.json", b"B")}, headers=file_keys.b
    )
    assert clash.status_code == 409

    replaced = await client.post(
        f"/api/v1/files/upload/{flow_id}",
        files={"file": ("data.json", b"[2]")},
        headers=file_keys.a,
    )
    assert replaced.status_code == 201
    again = await client.get(f"/api/v1/files/download/{flow_id}/data.json", headers=file_keys.a)
    assert again.content == b"[2]"

    deleted = await client.delete(f"/api/v1/files/delete/{flow_id}/data.json", headers=file_keys.a)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "File data.json deleted successfully"}
    assert (await client.get(f"/api/v1/files/list/{flow_id}", headers=file_keys.a)).json() == {
        "files": []
    }


async def test_v1_routes_answer_404_for_unknown_flows_and_files(file_keys: Keys) -> None:
    client = file_keys.client
    unknown = str(uuid.uuid4())
    response = await client.post(
        f"/api/v1/files/upload/{unknown}", files={"file": ("a.txt", b"a")}, headers=file_keys.a
    )
    assert response.status_code == 404
    assert response.json()["code"] == "flow_not_found"
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    for probe in ("missing.txt", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
        response = await client.get(
            f"/api/v1/files/download/{flow_id}/{probe}", headers=file_keys.a
        )
        assert response.status_code == 404, probe


async def test_flow_restricted_key_cannot_touch_another_flows_files(file_keys: Keys) -> None:
    client = file_keys.client
    mine = await save_flow(client, file_keys.a, reader_flow())
    other = await save_flow(client, file_keys.a, reader_flow())
    restricted = await file_keys.app.create_key(
        name="restricted", scopes=["read", "write", "execute"], flows=[mine]
    )
    headers = {"x-api-key": restricted["api_key"]}
    ok = await client.post(
        f"/api/v1/files/upload/{mine}", files={"file": ("a.txt", b"a")}, headers=headers
    )
    assert ok.status_code == 201
    refused = await client.post(
        f"/api/v1/files/upload/{other}", files={"file": ("a.txt", b"a")}, headers=headers
    )
    assert refused.status_code == 403
    listed = await client.get(f"/api/v1/files/list/{other}", headers=headers)
    assert listed.status_code == 403
    # Its own v2 files are not tied to any flow.
    assert (await client.get("/api/v2/files", headers=headers)).status_code == 200


async def test_deleting_a_flow_deletes_its_files(file_keys: Keys) -> None:
    client = file_keys.client
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    await client.post(
        f"/api/v1/files/upload/{flow_id}", files={"file": ("a.txt", b"a")}, headers=file_keys.a
    )
    kept = await upload(client, file_keys.a, "kept.txt", b"kept")
    assert (await client.delete(f"/api/v1/flows/{flow_id}", headers=file_keys.a)).status_code == 200
    files = file_keys.app.app.state.services.files
    assert await files.store.list(flow_id=flow_id) == []
    assert [f.id for f in await files.store.list()] == [kept["id"]]
