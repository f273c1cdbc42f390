"""Langflow's wire shapes for flows, projects and messages, and how records become them.

Field names follow Langflow 1.x (``FlowCreate``/``FlowRead``/``FlowUpdate``,
``FolderRead``, ``MessageResponse``) so its clients and tooling work
unchanged. Langflow-only fields we do not model (icon, tags, locked, ...) are
accepted and ignored on input, and answered with neutral values.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from datetime import datetime
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.types import Message as AsgiMessage

from flowserve.api.wire import read_body
from flowserve.catalog import file_record
from flowserve.engine.types import Message
from flowserve.errors import BadRequest, InvalidFlow, PayloadTooLarge
from flowserve.flowfile import load_document
from flowserve.flowfile.parser import JSON_ERRORS, malformed_json
from flowserve.results import PropertiesBody, properties_body
from flowserve.store.base import FlowRecord, ProjectRecord


class FlowCreate(msgspec.Struct, kw_only=True):
    name: str | None = None
    data: dict[str, Any] | None = None
    id: str | None = None
    description: str | None = None
    endpoint_name: str | None = None
    access_type: str | None = None
    webhook: bool | None = None
    mcp_enabled: bool | None = None
    folder_id: str | None = None
    session_ttl: int | None = None


class FlowUpdate(msgspec.Struct, kw_only=True):
    """Only the fields present change; ``null`` clears endpoint_name and session_ttl."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    data: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    endpoint_name: str | msgspec.UnsetType | None = msgspec.UNSET
    access_type: str | msgspec.UnsetType = msgspec.UNSET
    webhook: bool | msgspec.UnsetType = msgspec.UNSET
    mcp_enabled: bool | msgspec.UnsetType = msgspec.UNSET
    folder_id: str | msgspec.UnsetType = msgspec.UNSET
    session_ttl: int | msgspec.UnsetType | None = msgspec.UNSET


class FlowRead(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str
    data: dict[str, Any]
    endpoint_name: str | None
    access_type: str
    webhook: bool
    mcp_enabled: bool
    folder_id: str | None
    session_ttl: int | None
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    user_id: str | None = None
    is_component: bool = False
    locked: bool = False
    tags: list[str] = msgspec.field(default_factory=list)
    icon: str | None = None
    icon_bg_color: str | None = None
    gradient: str | None = None


class FlowHeader(msgspec.Struct, kw_only=True):
    """A flow without its graph (``header_flows=true``)."""

    id: str
    name: str
    description: str
    endpoint_name: str | None
    access_type: str
    webhook: bool
    mcp_enabled: bool
    folder_id: str | None
    version: int
    is_component: bool = False


class FlowPage(msgspec.Struct):
    """fastapi-pagination's ``Page``, as Langflow answers ``get_all=false``."""

    items: list[FlowRead]
    total: int
    page: int
    size: int
    pages: int


_SCHEMAS = "#/components/schemas/"
_PAGE_SCHEMA = msgspec.json.schema_components([FlowPage], ref_template=_SCHEMAS + "{name}")[1][
    "FlowPage"
]
# GET /flows/ answers full flows, a page of them, or flow headers (header_flows=true).
# msgspec cannot express a union of two untagged Structs, so the schema is spelled out
# (FlowRead is in the spec's components: other operations answer it).
FlowListing = Annotated[
    Any,
    msgspec.Meta(
        extra_json_schema={
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"$ref": _SCHEMAS + "FlowRead"},
                            msgspec.json.schema(FlowHeader)["$defs"]["FlowHeader"],
                        ]
                    },
                },
                _PAGE_SCHEMA,
            ]
        }
    ),
]


class Deleted(msgspec.Struct):
    deleted: int


class Notice(msgspec.Struct):
    message: str


class FolderCreate(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    parent_id: str | None = None
    flows_list: list[str] = msgspec.field(default_factory=list)
    components_list: list[str] = msgspec.field(default_factory=list)


class FolderUpdate(msgspec.Struct, kw_only=True):
    name: str | None = None
    description: str | None = None
    parent_id: str | None = None
    flows: list[str] = msgspec.field(default_factory=list)
    components: list[str] = msgspec.field(default_factory=list)


class FolderRead(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str
    parent_id: str | None


class FolderReadWithFlows(FolderRead, kw_only=True):
    flows: list[FlowRead]


class MessageRead(msgspec.Struct, kw_only=True):
    """Langflow's ``MessageResponse``."""

    id: str
    flow_id: str
    session_id: str
    timestamp: str
    sender: str
    sender_name: str
    text: str
    files: list[str]
    edit: bool
    error: bool
    category: str
    properties: PropertiesBody
    context_id: str = ""
    duration: float | None = None
    content_blocks: list[Any] = msgspec.field(default_factory=list)


class SessionMessages(msgspec.Struct):
    session_id: str
    messages: list[MessageRead]


class SessionDeleted(msgspec.Struct):
    session_id: str
    deleted: int


def flow_read(record: FlowRecord) -> FlowRead:
    return FlowRead(
        id=record.id,
        name=record.name,
        description=record.description,
        data=record.data,
        endpoint_name=record.endpoint_name,
        access_type=record.access_type,
        webhook=record.webhook,
        mcp_enabled=record.mcp_enabled,
        folder_id=record.folder_id,
        session_ttl=record.session_ttl,
        version=record.version,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def flow_header(record: FlowRecord) -> FlowHeader:
    return FlowHeader(
        id=record.id,
        name=record.name,
        description=record.description,
        endpoint_name=record.endpoint_name,
        access_type=record.access_type,
        webhook=record.webhook,
        mcp_enabled=record.mcp_enabled,
        folder_id=record.folder_id,
        version=record.version,
    )


def folder_read(record: ProjectRecord) -> FolderRead:
    return FolderRead(
        id=record.id, name=record.name, description=record.description, parent_id=record.parent_id
    )


def page_of(items: list[FlowRead], total: int, page: int, size: int) -> FlowPage:
    return FlowPage(items, total, page, size, math.ceil(total / size) if size else 0)


def message_read(message: Message) -> MessageRead:
    return MessageRead(
        id=message.id,
        flow_id=message.flow_id,
        session_id=message.session_id,
        timestamp=message.timestamp,
        sender=message.sender,
        sender_name=message.sender_name,
        text=message.text,
        files=message.files,
        edit=message.edit,
        error=message.error,
        category=message.category,
        context_id=message.context_id,
        properties=properties_body(message),
    )


def documents_from_upload(content: bytes, limit: int) -> list[dict[str, Any]]:
    """Flow documents in an uploaded file: one flow, ``{"flows": [...]}``, a list, or a zip
    (whose files may expand to ``limit`` bytes in all, the limit of a request body)."""
    if not content.strip():
        raise BadRequest("The uploaded file is empty")
    if zipfile.is_zipfile(io.BytesIO(content)):
        return _documents_from_zip(content, limit)
    try:
        document = msgspec.json.decode(content)
    except JSON_ERRORS as exc:
        raise malformed_json("Invalid JSON file", exc) from exc
    if isinstance(document, dict) and isinstance(document.get("flows"), list):
        document = document["flows"]
    items = document if isinstance(document, list) else [document]
    bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
    if bad:
        raise InvalidFlow(f"flows[{bad[0]}] is not a JSON object")
    if not items:
        raise InvalidFlow("The file holds no flow")
    return items


def _documents_from_zip(content: bytes, limit: int) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    expanded = 0
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            # file_size is what zipfile reads at most: checked before anything is inflated.
            expanded += info.file_size
            if expanded > limit:
                raise PayloadTooLarge(f"The zip's flow files expand beyond {limit} bytes")
            documents.append(load_document(archive.read(info)))
    if not documents:
        raise BadRequest("No flow JSON files found in the zip")
    return documents


def records_from_documents(
    documents: list[dict[str, Any]], folder_id: str | None
) -> list[FlowRecord]:
    problems: list[str] = []
    records: list[FlowRecord] = []
    for index, document in enumerate(documents):
        try:
            record = file_record(document)
        except InvalidFlow as exc:
            problems.append(f"flow {index}: {exc.detail}")
            continue
        if folder_id is not None:
            record = msgspec.structs.replace(record, folder_id=folder_id)
        records.append(record)
    if problems:
        raise InvalidFlow(problems)
    return records


_UNSAFE = re.compile(r"[^A-Za-z0-9 ._-]+")


def zip_of(records: list[FlowRecord]) -> bytes:
    """A zip with one ``<name>.json`` per flow (names made unique and file-safe)."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            stem = _UNSAFE.sub("_", record.name).strip() or record.id
            name, n = f"{stem}.json", 1
            while name in used:
                name, n = f"{stem} ({n}).json", n + 1
            used.add(name)
            archive.writestr(name, msgspec.json.encode(flow_read(record)))
    return buffer.getvalue()


async def uploaded_file(request: Request) -> tuple[bytes, str | None]:
    """The ``file`` part of a multipart body (and its file name), or a raw JSON/zip body."""
    content_type = request.headers.get("content-type", "")
    body = await read_body(request)  # bounded (413), with or without a Content-Length
    if not content_type.startswith("multipart/form-data"):
        return body, None

    async def receive() -> AsgiMessage:
        return {"type": "http.request", "body": body, "more_body": False}

    buffered = Request(request.scope, receive)
    async with buffered.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("No file provided: send the flow as the multipart field 'file'")
        return await upload.read(), upload.filename
