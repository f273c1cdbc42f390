"""Uploads are bounded like every other body: a multipart upload without a
Content-Length (chunked) and a zip that expands beyond the limit are 413s."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.helpers import flow, node


def _document(padding: int = 0) -> bytes:
    doc = flow(str(uuid.uuid4()), [node("ChatInput-a", "ChatInput")], [])
    return json.dumps(doc).encode() + b" " * padding


def _multipart(content: bytes, boundary: str = "b0undary") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.json"\r\n'
            f"Content-Type: application/json\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1000):
        yield body[start : start + 1000]


async def test_chunked_multipart_upload_over_the_limit_is_413(live_server: Any) -> None:
    body = _multipart(_document(padding=20_000))
    async with live_server(max_body_bytes=4096) as server, httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/api/v1/flows/upload/",
            content=_chunks(body),  # no Content-Length: Transfer-Encoding: chunked
            headers={"content-type": "multipart/form-data; boundary=b0undary"},
        )
        small = await http.post(
            f"{server.url}/api/v1/flows/upload/",
            content=_chunks(_multipart(_document())),
            headers={"content-type": "multipart/form-data; boundary=b0undary"},
        )
    assert response.status_code == 413, response.text
    assert "4096 bytes" in response.json()["detail"]
    assert small.status_code == 201, small.text


async def test_zip_that_expands_beyond_the_limit_is_413(live_server: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(8):
            archive.writestr(f"f{i}.json", _document(padding=100_000))
    packed = buffer.getvalue()
    assert len(packed) < 20_000
    async with live_server(max_body_bytes=200_000) as server, httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/api/v1/flows/upload/",
            files={"file": ("flows.zip", packed, "application/zip")},
        )
    assert response.status_code == 413, response.text
    assert "expand" in response.json()["detail"]
