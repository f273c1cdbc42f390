"""``/api/v1/projects/``: Langflow's projects (folders): CRUD, and download/upload as a zip.

A default project ("Starter Project") always exists and holds every flow saved
without a ``folder_id``; it cannot be deleted. Deleting a project deletes its
flows, as in Langflow.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.errors import ErrorBody
from flowserve.api.flow_types import (
    FlowRead,
    FolderCreate,
    FolderRead,
    FolderReadWithFlows,
    FolderUpdate,
    documents_from_upload,
    flow_read,
    folder_read,
    records_from_documents,
    uploaded_file,
    zip_of,
)
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, attachment, decode, read_body
from flowserve.catalog import FlowCatalog, ProjectNotFound
from flowserve.errors import Invalid
from flowserve.store.base import FlowFilter, ProjectRecord, canonical_uuid

_ALL_LIMIT = 10_000


def _catalog(request: Request) -> FlowCatalog:
    catalog: FlowCatalog = request.app.state.services.catalog
    return catalog


async def _project(catalog: FlowCatalog, project_id: str) -> ProjectRecord:
    project = await catalog.flows.get_project(project_id)
    if project is None:
        raise ProjectNotFound(f"Project {project_id} not found")
    return project


async def _move(catalog: FlowCatalog, flow_ids: list[str], project_id: str) -> None:
    """Move existing flows into a project (unknown ids are ignored, as Langflow does)."""
    records = await catalog.flows.get_many(flow_ids)
    moved = [msgspec.structs.replace(r, folder_id=project_id) for r in records]
    if moved:
        await catalog.upsert_many(moved)


async def _parent(catalog: FlowCatalog, parent_id: str | None) -> str | None:
    if parent_id is None:
        return None
    return (await _project(catalog, parent_id)).id


async def _refuse_cycle(catalog: FlowCatalog, project_id: str, parent_id: str) -> None:
    """422 when ``parent_id`` is the project itself or one of its descendants."""
    seen: set[str] = set()
    current: str | None = canonical_uuid(parent_id) or parent_id
    while current is not None and current not in seen:
        if current == project_id:
            raise Invalid("A project cannot be its own parent, nor the child of its child")
        seen.add(current)
        ancestor = await catalog.flows.get_project(current)
        current = ancestor.parent_id if ancestor is not None else None


async def list_projects(request: Request) -> Response:
    projects = await _catalog(request).flows.list_projects()
    return JSONResponse([folder_read(p) for p in projects])


async def create_project(request: Request) -> Response:
    catalog = _catalog(request)
    body = decode(await read_body(request), FolderCreate)
    parent_id = await _parent(catalog, body.parent_id)
    project = await catalog.create_project(body.name, body.description, parent_id)
    await _move(catalog, [*body.flows_list, *body.components_list], project.id)
    return JSONResponse(folder_read(project), status_code=201)


async def read_project(request: Request) -> Response:
    catalog = _catalog(request)
    project = await _project(catalog, request.path_params["project_id"])
    flows = await catalog.flows.list(limit=_ALL_LIMIT, where=FlowFilter(folder_id=project.id))
    read = folder_read(project)
    return JSONResponse(
        FolderReadWithFlows(**msgspec.structs.asdict(read), flows=[flow_read(f) for f in flows])
    )


async def update_project(request: Request) -> Response:
    catalog = _catalog(request)
    body = decode(await read_body(request), FolderUpdate)
    project = await _project(catalog, request.path_params["project_id"])
    if body.parent_id is not None:
        await _refuse_cycle(catalog, project.id, body.parent_id)
    changed = msgspec.structs.replace(
        project,
        name=body.name if body.name is not None else project.name,
        description=body.description if body.description is not None else project.description,
        parent_id=await _parent(catalog, body.parent_id)
        if body.parent_id is not None
        else project.parent_id,
    )
    if not changed.name.strip():
        raise Invalid("Project name must not be empty")
    stored = await catalog.flows.update_project(changed)
    if stored is None:
        raise ProjectNotFound(f"Project {project.id} not found")
    await _move(catalog, [*body.flows, *body.components], stored.id)
    return JSONResponse(folder_read(stored))


async def delete_project(request: Request) -> Response:
    await _catalog(request).delete_project(request.path_params["project_id"])
    return Response(status_code=204)


async def download_project(request: Request) -> Response:
    catalog = _catalog(request)
    project = await _project(catalog, request.path_params["project_id"])
    flows = await catalog.flows.list(limit=_ALL_LIMIT, where=FlowFilter(folder_id=project.id))
    filename = "".join(c if c.isalnum() or c in " ._-" else "_" for c in project.name)
    return Response(
        zip_of(flows),
        media_type="application/zip",
        headers=attachment(f"{filename or project.id}.zip"),
    )


async def upload_project(request: Request) -> Response:
    """A zip (or JSON) of flows becomes a new project, named after the file unless ``name``."""
    catalog = _catalog(request)
    content, filename = await uploaded_file(request)
    documents = documents_from_upload(content, request.app.state.settings.max_body_bytes)
    name = request.query_params.get("name") or (
        PurePath(filename).stem if filename else "Uploaded project"
    )
    project = await catalog.create_project(await catalog.unique_project_name(name))
    try:
        results = await catalog.upsert_many(records_from_documents(documents, project.id))
    except BaseException:
        await catalog.delete_project(project.id)  # nothing half-written
        raise
    return JSONResponse([flow_read(stored) for stored, _ in results], status_code=201)


_ID = Param("project_id", "path", "Project UUID", required=True)
_E: dict[int, Any] = {401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody}

OPERATIONS = [
    Operation(
        "GET",
        "/api/v1/projects/",
        list_projects,
        "List projects",
        scope="read",
        tag="projects",
        responses={200: list[FolderRead], 401: ErrorBody},
    ),
    Operation(
        "POST",
        "/api/v1/projects/",
        create_project,
        "Create a project (optionally moving flows into it)",
        scope="write",
        tag="projects",
        request=FolderCreate,
        responses={201: FolderRead, **_E},
    ),
    Operation(
        "POST",
        "/api/v1/projects/upload/",
        upload_project,
        "Upload a zip (or JSON) of flows as a new project",
        scope="write",
        tag="projects",
        responses={201: list[FlowRead], 400: ErrorBody, 413: ErrorBody, **_E},
        params=(Param("name", "query", "Project name (default: the file's name)"),),
        content_type="multipart/form-data",
    ),
    Operation(
        "GET",
        "/api/v1/projects/download/{project_id}",
        download_project,
        "Download a project's flows as a zip",
        scope="read",
        tag="projects",
        responses={200: None, **_E},
        params=(_ID,),
    ),
    Operation(
        "GET",
        "/api/v1/projects/{project_id}",
        read_project,
        "Read a project and its flows",
        scope="read",
        tag="projects",
        responses={200: FolderReadWithFlows, **_E},
        params=(_ID,),
    ),
    Operation(
        "PATCH",
        "/api/v1/projects/{project_id}",
        update_project,
        "Rename a project or move flows into it",
        scope="write",
        tag="projects",
        request=FolderUpdate,
        responses={200: FolderRead, **_E},
        params=(_ID,),
    ),
    Operation(
        "DELETE",
        "/api/v1/projects/{project_id}",
        delete_project,
        "Delete a project and its flows (not the default project)",
        scope="write",
        tag="projects",
        responses={204: None, **_E},
        params=(_ID,),
    ),
]
