"""Shared by the files API and File component tests: an authed app on each backend with
two ordinary keys, small documents of every format made here, and flows that read them."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.authed import ADMIN, AuthedApp, auth_settings, authed_app
from tests.conftest import TEST_REDIS_URL
from tests.helpers import edge, flow, node

FILE_NODE = "File-rd01"


@dataclass
class Keys:
    app: AuthedApp
    a: dict[str, str]
    b: dict[str, str]
    a_id: str
    admin: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.app.client


@pytest.fixture(params=["embedded", "postgres"])
def file_backend(request: pytest.FixtureRequest, flows_dir: Path) -> dict[str, Any]:
    """Settings changes for each backend: embedded (a directory) and PostgreSQL."""
    if request.param == "embedded":
        return {"files_dir": str(flows_dir.parent / "uploads")}
    return {
        "database_url": request.getfixturevalue("clean_pg"),
        "redis_url": TEST_REDIS_URL,
        "redis_prefix": request.getfixturevalue("redis_prefix"),
    }


async def open_keys(flows_dir: Path, **changes: Any) -> AsyncIterator[Keys]:
    async with authed_app(auth_settings(flows_dir, **changes)) as app:
        scopes = ["read", "execute", "write"]
        a = await app.create_key(name="a", scopes=scopes)
        b = await app.create_key(name="b", scopes=scopes)
        yield Keys(app, {"x-api-key": a["api_key"]}, {"x-api-key": b["api_key"]}, a["id"], ADMIN)


@pytest.fixture
async def file_keys(flows_dir: Path, file_backend: dict[str, Any]) -> AsyncIterator[Keys]:
    async for k in open_keys(flows_dir, **file_backend):
        yield k


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, content: bytes
) -> dict[str, Any]:
    response = await client.post("/api/v2/files", files={"file": (name, content)}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def reader_flow(saved_path: Any = "", **extra: Any) -> dict[str, Any]:
    """File -> Chat Output: the run's answer is the file's text."""
    nodes = [
        node(FILE_NODE, "File", path=saved_path, **extra),
        node("ChatOutput-rd02", "ChatOutput"),
    ]
    edges = [edge(FILE_NODE, "message", "ChatOutput-rd02", "input_value")]
    return flow(str(uuid.uuid4()), nodes, edges)


async def save_flow(client: httpx.AsyncClient, headers: dict[str, str], doc: dict[str, Any]) -> str:
    response = await client.post("/api/v1/flows/", json=doc, headers=headers)
    assert response.status_code == 201, response.text
    flow_id: str = response.json()["id"]
    return flow_id


async def run(
    client: httpx.AsyncClient, headers: dict[str, str], flow_id: str, tweaks: Any = None
) -> httpx.Response:
    body: dict[str, Any] = {"input_value": "go"}
    if tweaks is not None:
        body["tweaks"] = tweaks
    return await client.post(f"/api/v1/run/{flow_id}", json=body, headers=headers)


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    return text


# ---- documents made in the tests -------------------------------------------------------


def pdf_with_text(lines: list[str]) -> bytes:
    """A minimal one-page PDF (Helvetica text), its xref offsets computed here."""
    stream = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({t}) '" for t in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        " /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_with_paragraphs(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    """A DOCX as Word lays one out (only the parts a reader needs)."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    if table:
        rows = "".join(
            "<w:tr>"
            + "".join(f"<w:tc><w:p><w:r><w:t>{c}</w:t></w:r></w:p></w:tc>" for c in row)
            + "</w:tr>"
            for row in table
        )
        body += f"<w:tbl>{rows}</w:tbl>"
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr("word/document.xml", document)
    return out.getvalue()
