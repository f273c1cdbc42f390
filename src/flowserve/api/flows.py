"""``/api/v1/flows/``: Langflow's flows API (create, list, read, update, upsert, delete,
upload, download). Every write validates the flow first (422 naming each problem,
nothing written); an endpoint-name clash is a 409. A flow's answers carry its ETag,
and PATCH/PUT honour ``If-Match`` (412 when the flow has moved on; see api/etags.py)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.auth import check_flows, flows_in_view
from flowserve.api.errors import ErrorBody
from flowserve.api.etags import etag_header, if_match, replace_if_match
from flowserve.api.flow_types import (
    Deleted,
    FlowCreate,
    FlowListing,
    FlowRead,
    FlowUpdate,
    Notice,
    documents_from_upload,
    flow_header,
    flow_read,
    page_of,
    records_from_documents,
    uploaded_file,
    zip_of,
)
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, attachment, decode, read_body
from flowserve.catalog import FlowCatalog
from flowserve.errors import FlowNotFound, Invalid, NotFound
from flowserve.store.base import FlowFilter, FlowRecord

_TRUE = frozenset({"true", "1", "yes", "on"})
_ALL_LIMIT = 10_000


def _catalog(request: Request) -> FlowCatalog:
    catalog: FlowCatalog = request.app.state.services.catalog
    return catalog


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() in _TRUE


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"Query parameter '{name}' must be an integer from {low} to {high}")
    return int(raw)


def _record(body: FlowCreate, flow_id: str) -> FlowRecord:
    if body.data is None:
        raise Invalid("Invalid flow: 'data' with 'nodes' and 'edges' is required")
    return FlowRecord(
        id=flow_id,
        name=body.name if body.name is not None else "",
        data=body.data,
        description=body.description or "",
        endpoint_name=body.endpoint_name or None,
        access_type=(body.access_type or "PRIVATE").upper(),
        webhook=bool(body.webhook),
        mcp_enabled=bool(body.mcp_enabled),
        folder_id=body.folder_id,
        session_ttl=body.session_ttl,
    )


async def _existing(catalog: FlowCatalog, ref: str) -> FlowRecord:
    record = await catalog.flows.get(ref)
    if record is None:
        raise FlowNotFound(ref)
    return record


async def create_flow(request: Request) -> Response:
    body = decode(await read_body(request), FlowCreate)
    record = _record(body, body.id or str(uuid.uuid4()))
    stored = await _catalog(request).create(record)
    return JSONResponse(flow_read(stored), status_code=201, headers=etag_header(stored))


async def list_flows(request: Request) -> Response:
    catalog = _catalog(request)
    params = request.query_params
    view = await flows_in_view(request)
    where = FlowFilter(
        name=params.get("name"),
        endpoint_name=params.get("endpoint_name"),
        folder_id=params.get("folder_id"),
        ids=tuple(sorted(view)) if view is not None else None,
    )
    # As Langflow: get_all defaults to true, and page/size only count with get_all=false.
    if _flag(request, "get_all", True):
        records = await catalog.flows.list(limit=_ALL_LIMIT, where=where)
        if _flag(request, "header_flows", False):
            return JSONResponse([flow_header(r) for r in records])
        return JSONResponse([flow_read(r) for r in records])
    page = _int(request, "page", 1, 1, 1_000_000)
    size = _int(request, "size", 50, 1, 1000)
    records = await catalog.flows.list(limit=size, offset=(page - 1) * size, where=where)
    total = await catalog.flows.count(where)
    return JSONResponse(page_of([flow_read(r) for r in records], total, page, size))


async def read_flow(request: Request) -> Response:
    record = await _existing(_catalog(request), request.path_params["flow_id"])
    return JSONResponse(flow_read(record), headers=etag_header(record))


async def update_flow(request: Request) -> Response:
    catalog = _catalog(request)
    condition = if_match(request)
    patch = decode(await read_body(request), FlowUpdate)
    record = await _existing(catalog, request.path_params["flow_id"])
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    if "access_type" in changes:
        changes["access_type"] = str(changes["access_type"]).upper()
    if changes.get("endpoint_name") == "":
        changes["endpoint_name"] = None
    if changes.get("description", "") is None:
        changes["description"] = ""
    changed = msgspec.structs.replace(record, **changes)
    if condition is None:
        stored, _ = await catalog.upsert(changed)
    else:
        stored = await replace_if_match(catalog, changed, condition, record)
    return JSONResponse(flow_read(stored), headers=etag_header(stored))


async def upsert_flow(request: Request) -> Response:
    body = decode(await read_body(request), FlowCreate)
    flow_id = request.path_params["flow_id"]
    catalog = _catalog(request)
    condition = if_match(request)
    # Flow files pushed from Git may carry another server's folder_id.
    record = await catalog.placed(_record(body, flow_id))
    if condition is None:
        stored, created = await catalog.upsert(record)
    else:  # If-Match: only an existing flow at a named revision is replaced
        stored, created = await replace_if_match(catalog, record, condition, None), False
    status = 201 if created else 200
    return JSONResponse(flow_read(stored), status_code=status, headers=etag_header(stored))


async def delete_flow(request: Request) -> Response:
    catalog = _catalog(request)
    record = await _existing(catalog, request.path_params["flow_id"])
    await catalog.delete([record.id])
    return JSONResponse(Notice("Flow deleted successfully"))


async def delete_flows(request: Request) -> Response:
    ids = decode(await read_body(request), list[str])
    await check_flows(request, ids)
    deleted = await _catalog(request).delete(ids)
    return JSONResponse(Deleted(len(deleted)))


async def upload_flows(request: Request) -> Response:
    content, _ = await uploaded_file(request)
    folder_id = request.query_params.get("folder_id")
    catalog = _catalog(request)
    records = records_from_documents(
        documents_from_upload(content, request.app.state.settings.max_body_bytes), folder_id
    )
    if folder_id is None:
        records = [await catalog.placed(r) for r in records]
    results = await catalog.upsert_many(records)
    return JSONResponse([flow_read(stored) for stored, _ in results], status_code=201)


async def download_flows(request: Request) -> Response:
    if request.method == "POST":
        ids = decode(await read_body(request), list[str])
    else:
        ids = request.query_params.getlist("ids") or request.query_params.getlist("flow_ids")
    await check_flows(request, ids)
    records = await _catalog(request).flows.get_many(ids)
    if not records:
        raise NotFound("No flows found.")
    if len(records) == 1:
        filename = f"{records[0].name or records[0].id}.json"
        return JSONResponse(flow_read(records[0]), headers=attachment(filename))
    return Response(
        zip_of(records),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="flows.zip"'},
    )


_ID = Param("flow_id", "path", "Flow UUID (or endpoint name)", required=True)
_E: dict[int, Any] = {401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody}
_E503 = {503: ErrorBody}
_LIST_PARAMS = (
    Param("get_all", "query", "false: paginate", {"type": "boolean", "default": True}),
    Param("page", "query", "Page number (from 1)", {"type": "integer", "default": 1, "minimum": 1}),
    Param(
        "size",
        "query",
        "Page size",
        {"type": "integer", "default": 50, "minimum": 1, "maximum": 1000},
    ),
    Param("name", "query", "Only flows with this exact name"),
    Param("endpoint_name", "query", "Only the flow with this endpoint name"),
    Param("folder_id", "query", "Only flows of this project"),
    Param("header_flows", "query", "Without data", {"type": "boolean", "default": False}),
)
_IDS = Param("ids", "query", "Flow ids (repeat)", {"type": "array", "items": {"type": "string"}})
_FOLDER = Param("folder_id", "query", "Put the uploaded flows in this project")
_IF_MATCH = Param(
    "If-Match",
    "header",
    "Write only while the flow is at this ETag (from a read or write of it); 412 when it has"
    " changed since. '*': only if the flow exists. Without it the last writer wins.",
)
_E412 = {412: ErrorBody}

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/flows/",
        create_flow,
        "Create a flow (validated before it is saved)",
        scope="write",
        tag="flows",
        request=FlowCreate,
        responses={201: FlowRead, **_E, **_E503},
    ),
    Operation(
        "GET",
        "/api/v1/flows/",
        list_flows,
        "List flows (all, or one page with get_all=false)",
        scope="read",
        tag="flows",
        responses={200: FlowListing, 401: ErrorBody, 422: ErrorBody},
        params=_LIST_PARAMS,
        filters_flows=True,
    ),
    Operation(
        "DELETE",
        "/api/v1/flows/",
        delete_flows,
        "Delete several flows by id",
        scope="write",
        tag="flows",
        request=list[str],
        responses={200: Deleted, **_E},
        filters_flows=True,
    ),
    Operation(
        "POST",
        "/api/v1/flows/upload/",
        upload_flows,
        "Upload flows (JSON file with one flow or a list, or a zip); upsert by id",
        scope="write",
        tag="flows",
        responses={201: list[FlowRead], 400: ErrorBody, 413: ErrorBody, **_E},
        params=(_FOLDER,),
        content_type="multipart/form-data",
    ),
    Operation(
        "GET",
        "/api/v1/flows/download/",
        download_flows,
        "Download flows: one as JSON, several as a zip",
        scope="read",
        tag="flows",
        responses={200: FlowRead, **_E},
        params=(_IDS,),
        filters_flows=True,
    ),
    Operation(
        "POST",
        "/api/v1/flows/download/",
        download_flows,
        "Download flows by a list of ids (Langflow): one as JSON, several as a zip",
        scope="read",
        tag="flows",
        request=list[str],
        responses={200: FlowRead, **_E},
        filters_flows=True,
    ),
    Operation(
        "GET",
        "/api/v1/flows/{flow_id}",
        read_flow,
        "Read a flow (its ETag in the ETag header)",
        scope="read",
        tag="flows",
        responses={200: FlowRead, **_E},
        params=(_ID,),
    ),
    Operation(
        "PATCH",
        "/api/v1/flows/{flow_id}",
        update_flow,
        "Change some fields of a flow (If-Match: only while it is at that ETag)",
        scope="write",
        tag="flows",
        request=FlowUpdate,
        responses={200: FlowRead, **_E, **_E412},
        params=(_ID, _IF_MATCH),
    ),
    Operation(
        "PUT",
        "/api/v1/flows/{flow_id}",
        upsert_flow,
        "Create or replace the flow with this id (201 created, 200 updated; If-Match: replace"
        " only while it is at that ETag)",
        scope="write",
        tag="flows",
        request=FlowCreate,
        responses={200: FlowRead, 201: FlowRead, **_E, **_E412},
        params=(_ID, _IF_MATCH),
    ),
    Operation(
        "DELETE",
        "/api/v1/flows/{flow_id}",
        delete_flow,
        "Delete a flow",
        scope="write",
        tag="flows",
        responses={200: Notice, **_E},
        params=(_ID,),
    ),
]
