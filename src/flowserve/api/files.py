"""Langflow's files API: ``/api/v2/files`` (a key's own files) and ``/api/v1/files``
(files uploaded with one flow). The rules live in ``flowserve.files``; here the
multipart upload is streamed into a spooled temporary file under the size limit
(413 past ``FLOWSERVE_MAX_FILE_BYTES``, counted as the body arrives, whatever the
Content-Length says), and downloads are streamed back as attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message as AsgiMessage
from starlette.types import Receive

from flowserve.api.auth import principal
from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, attachment, decode, read_body, refuse_compressed
from flowserve.engine import RunOwner
from flowserve.errors import BadRequest, FileNotFound, FlowNotFound, PayloadTooLarge
from flowserve.files import Files, owner_of, shown, stem
from flowserve.store.base import FileRecord

# Room for the multipart envelope (boundaries, part headers) beyond the file itself.
_ENVELOPE = 64 * 1024
_CHUNK = 1024 * 1024


class FileUpload(msgspec.Struct):
    """The multipart form: one part named ``file``."""

    file: Annotated[str, msgspec.Meta(extra_json_schema={"format": "binary"})]


class UploadFileResponse(msgspec.Struct):
    """Langflow's v2 answer to an upload or a rename; ``path`` is what the File
    component's ``path`` tweak takes."""

    id: str
    name: str
    path: str
    size: int
    provider: str | None = None


class FileRead(msgspec.Struct):
    """One file of a listing (Langflow's ``UserFile``)."""

    id: str
    user_id: str
    name: str
    path: str
    size: int
    provider: str | None
    created_at: datetime
    updated_at: datetime


class FlowFileUploaded(msgspec.Struct):
    """Langflow's v1 answer to an upload."""

    flow_id: str = msgspec.field(name="flowId")
    file_path: str = ""


class FlowFiles(msgspec.Struct):
    files: list[str]


class Detail(msgspec.Struct):
    detail: str


class Notice(msgspec.Struct):
    message: str


def _files(request: Request) -> Files:
    files: Files = request.app.state.services.files
    return files


def _owner(request: Request) -> RunOwner | None:
    return owner_of(principal(request))


def _writer(request: Request) -> RunOwner:
    owner = _owner(request)
    if owner is None:  # the guard lets no anonymous caller reach a write route
        raise FileNotFound("Files belong to API keys: send one")
    return owner


def _uploaded(record: FileRecord) -> UploadFileResponse:
    return UploadFileResponse(record.id, stem(record.name), record.path, record.size)


def _listed(record: FileRecord) -> FileRead:
    return FileRead(
        id=record.id,
        user_id=record.owner,
        name=stem(record.name),
        path=record.path,
        size=record.size,
        provider=None,
        created_at=record.created_at,
        updated_at=record.created_at,
    )


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> AsgiMessage:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"File exceeds the limit of {limit - _ENVELOPE} bytes")
        return message

    return counted


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


async def _upload(request: Request, flow_id: str | None) -> FileRecord:
    files = _files(request)
    owner = _writer(request)
    refuse_compressed(request)
    limit = files.max_bytes + _ENVELOPE
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"File exceeds the limit of {files.max_bytes} bytes")
    counted = Request(request.scope, _limited(request.receive, limit))
    # Starlette spools each file part to a temporary file past 1 MiB: never all in memory.
    async with counted.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("No file provided: send it as the multipart form field 'file'")
        if upload.size is not None and upload.size > files.max_bytes:
            raise PayloadTooLarge(f"File exceeds the limit of {files.max_bytes} bytes")
        return await files.upload(owner, upload.filename, _chunks(upload), flow_id=flow_id)


async def _download(files: Files, record: FileRecord) -> Response:
    content = files.content(record)
    # The first chunk is read before the answer starts, so a file gone from the
    # store is a clean 404 rather than a broken stream.
    first = await anext(content, b"")

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in content:
            yield chunk

    headers = {
        **attachment(record.name),
        "Content-Length": str(record.size),
        # An uploaded HTML or SVG file must never render as a page of this origin.
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(body(), media_type=record.content_type, headers=headers)


# ---- v2: a key's own files -------------------------------------------------------------


async def upload_file(request: Request) -> Response:
    record = await _upload(request, None)
    return JSONResponse(_uploaded(record), status_code=201)


async def list_files(request: Request) -> Response:
    records = await _files(request).list(_owner(request))
    return JSONResponse([_listed(r) for r in records])


async def download_file(request: Request) -> Response:
    files = _files(request)
    record = await files.get(request.path_params["file_id"], _owner(request))
    return await _download(files, record)


async def rename_file(request: Request) -> Response:
    name = request.query_params.get("name")
    if name is None:
        raise BadRequest("Query parameter 'name' (the new file name) is required")
    record = await _files(request).rename(request.path_params["file_id"], name, _owner(request))
    return JSONResponse(_uploaded(record))


async def delete_file(request: Request) -> Response:
    files = _files(request)
    record = await files.get(request.path_params["file_id"], _owner(request))
    await files.delete(record)
    return JSONResponse(Detail(f"File {shown(stem(record.name))} deleted successfully"))


async def delete_files_batch(request: Request) -> Response:
    ids = decode(await read_body(request), list[str])
    files = _files(request)
    owner = _owner(request)
    records: list[FileRecord] = []
    for file_id in dict.fromkeys(ids):
        try:
            records.append(await files.get(file_id, owner))
        except FileNotFound:
            continue
    if not records:
        raise FileNotFound("No files found")
    for record in records:
        await files.delete(record)
    return JSONResponse(Notice(f"{len(records)} files deleted successfully"))


async def delete_all_files(request: Request) -> Response:
    """Every file the caller owns (an admin key's own too, not every owner's)."""
    files = _files(request)
    owner = _writer(request)
    mine = RunOwner(owner.id)
    records = await files.list(mine)
    for record in records:
        await files.delete(record)
    return JSONResponse(Notice("All files deleted successfully"))


# ---- v1: files uploaded with a flow ----------------------------------------------------


async def _flow_id(request: Request) -> str:
    ref = request.path_params["flow_id"]
    record = await request.app.state.services.flows.get(ref)
    if record is None:
        raise FlowNotFound(ref)
    flow_id: str = record.id
    return flow_id


async def upload_flow_file(request: Request) -> Response:
    flow_id = await _flow_id(request)
    record = await _upload(request, flow_id)
    return JSONResponse(FlowFileUploaded(flow_id, record.path), status_code=201)


async def list_flow_files(request: Request) -> Response:
    flow_id = await _flow_id(request)
    records = await _files(request).list(_owner(request), flow_id=flow_id)
    return JSONResponse(FlowFiles([r.name for r in records]))


async def download_flow_file(request: Request) -> Response:
    flow_id = await _flow_id(request)
    files = _files(request)
    record = await files.in_flow(flow_id, request.path_params["file_name"], _owner(request))
    return await _download(files, record)


async def delete_flow_file(request: Request) -> Response:
    flow_id = await _flow_id(request)
    files = _files(request)
    name = request.path_params["file_name"]
    record = await files.in_flow(flow_id, name, _owner(request))
    await files.delete(record)
    return JSONResponse(Notice(f"File {shown(name)} deleted successfully"))


_FILE_ID = Param("file_id", "path", "File id (from the upload or the listing)", required=True)
_FLOW_ID = Param("flow_id", "path", "Flow UUID (or endpoint name)", required=True)
_FILE_NAME = Param("file_name", "path", "The file's name within the flow", required=True)
_NAME = Param("name", "query", "The new name (the extension is kept)", required=True)
_UPLOAD_ERRORS: dict[int, Any] = {400: ErrorBody, 413: ErrorBody, 415: ErrorBody}
_E404 = {404: ErrorBody}
_BYTES = {200: "application/octet-stream"}

OPERATIONS = [
    Operation(
        "POST",
        "/api/v2/files",
        upload_file,
        "Upload a file (multipart field 'file'); its path feeds the File component",
        scope="write",
        tag="files",
        request=FileUpload,
        responses={201: UploadFileResponse, **_UPLOAD_ERRORS, 409: ErrorBody, 422: ErrorBody},
        content_type="multipart/form-data",
        filters_flows=True,
    ),
    Operation(
        "GET",
        "/api/v2/files",
        list_files,
        "List the caller's files (an admin key: every file)",
        scope="read",
        tag="files",
        responses={200: list[FileRead]},
        filters_flows=True,
    ),
    Operation(
        "DELETE",
        "/api/v2/files",
        delete_all_files,
        "Delete every file the caller owns",
        scope="write",
        tag="files",
        responses={200: Notice},
        filters_flows=True,
    ),
    Operation(
        "DELETE",
        "/api/v2/files/batch/",
        delete_files_batch,
        "Delete several of the caller's files by id",
        scope="write",
        tag="files",
        request=list[str],
        responses={200: Notice, **_E404, 422: ErrorBody},
        filters_flows=True,
    ),
    Operation(
        "GET",
        "/api/v2/files/{file_id}",
        download_file,
        "Download a file",
        scope="read",
        tag="files",
        responses={200: None, **_E404},
        params=(_FILE_ID,),
        streams=_BYTES,
        filters_flows=True,
    ),
    Operation(
        "PUT",
        "/api/v2/files/{file_id}",
        rename_file,
        "Rename a file (its path stays the same)",
        scope="write",
        tag="files",
        responses={200: UploadFileResponse, 400: ErrorBody, **_E404},
        params=(_FILE_ID, _NAME),
        filters_flows=True,
    ),
    Operation(
        "DELETE",
        "/api/v2/files/{file_id}",
        delete_file,
        "Delete a file",
        scope="write",
        tag="files",
        responses={200: Detail, **_E404},
        params=(_FILE_ID,),
        filters_flows=True,
    ),
    Operation(
        "POST",
        "/api/v1/files/upload/{flow_id}",
        upload_flow_file,
        "Upload a file with a flow (multipart field 'file'); deleted with the flow",
        scope="write",
        tag="files",
        request=FileUpload,
        responses={
            201: FlowFileUploaded,
            **_UPLOAD_ERRORS,
            **_E404,
            409: ErrorBody,
            422: ErrorBody,
        },
        params=(_FLOW_ID,),
        content_type="multipart/form-data",
    ),
    Operation(
        "GET",
        "/api/v1/files/list/{flow_id}",
        list_flow_files,
        "List the caller's files of a flow",
        scope="read",
        tag="files",
        responses={200: FlowFiles, **_E404},
        params=(_FLOW_ID,),
    ),
    Operation(
        "GET",
        "/api/v1/files/download/{flow_id}/{file_name}",
        download_flow_file,
        "Download a file of a flow",
        scope="read",
        tag="files",
        responses={200: None, **_E404},
        params=(_FLOW_ID, _FILE_NAME),
        streams=_BYTES,
    ),
    Operation(
        "DELETE",
        "/api/v1/files/delete/{flow_id}/{file_name}",
        delete_flow_file,
        "Delete a file of a flow",
        scope="write",
        tag="files",
        responses={200: Notice, **_E404},
        params=(_FLOW_ID, _FILE_NAME),
    ),
]
