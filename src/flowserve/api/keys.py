"""``/api/v1/api_key/``: create, list and revoke API keys (Langflow's paths and shapes).

The create response is the only place a key ever appears; listings show its
prefix followed by stars. ``DELETE`` revokes: the key stops working at once on
this instance and within seconds everywhere, and stays listed as inactive.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve.access import Access, mask
from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, decode, read_body
from flowserve.errors import Invalid
from flowserve.store.base import KeyRecord

ScopeName = Literal["read", "execute", "write", "admin"]


class ApiKeyCreate(msgspec.Struct, kw_only=True):
    """Langflow's body (``{"name": ...}``) plus what a key may do. Other Langflow
    fields (``api_key``, ``user_id``...) are accepted and ignored: keys are always
    generated here."""

    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    scopes: list[ScopeName] = msgspec.field(default_factory=lambda: ["read", "execute"])
    # Flow ids or endpoint names; omitted or null: every flow.
    flows: list[str] | None = None
    expires_at: datetime | None = None
    # Alternatively, a lifetime in seconds from now.
    expires_in: Annotated[int, msgspec.Meta(gt=0)] | None = None


class ApiKeyRead(msgspec.Struct, kw_only=True):
    id: str
    name: str
    api_key: str
    prefix: str
    scopes: list[str]
    flows: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    total_uses: int
    is_active: bool
    revoked_at: datetime | None


class ApiKeysResponse(msgspec.Struct):
    total_count: int
    api_keys: list[ApiKeyRead]


class Deleted(msgspec.Struct):
    detail: str


def key_view(record: KeyRecord, api_key: str | None = None) -> ApiKeyRead:
    now = datetime.now(UTC)
    expired = record.expires_at is not None and record.expires_at <= now
    return ApiKeyRead(
        id=record.id,
        name=record.name,
        api_key=api_key if api_key is not None else mask(record.prefix),
        prefix=record.prefix,
        scopes=list(record.scopes),
        flows=list(record.flows) if record.flows is not None else None,
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_used_at=record.last_used_at,
        total_uses=record.total_uses,
        is_active=record.revoked_at is None and not expired,
        revoked_at=record.revoked_at,
    )


async def create_api_key(request: Request) -> Response:
    access: Access = request.app.state.services.access
    body = decode(await read_body(request), ApiKeyCreate, empty=ApiKeyCreate())
    if body.expires_at is not None and body.expires_in is not None:
        raise Invalid("Give expires_at or expires_in, not both")
    expires_at = body.expires_at
    if body.expires_in is not None:
        expires_at = datetime.now(UTC) + timedelta(seconds=body.expires_in)
    record, key = await access.create_key(
        name=body.name, scopes=body.scopes, flows=body.flows, expires_at=expires_at
    )
    return JSONResponse(key_view(record, key), headers={"Cache-Control": "no-store"})


async def list_api_keys(request: Request) -> Response:
    access: Access = request.app.state.services.access
    records = await access.list_keys()
    return JSONResponse(ApiKeysResponse(len(records), [key_view(r) for r in records]))


async def delete_api_key(request: Request) -> Response:
    access: Access = request.app.state.services.access
    await access.revoke_key(request.path_params["api_key_id"])
    return JSONResponse(Deleted("API Key deleted"))


OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/api_key/",
        create_api_key,
        "Create an API key; the response is the only time the key is shown",
        scope="admin",
        tag="api_key",
        request=ApiKeyCreate,
        responses={200: ApiKeyRead, 400: ErrorBody, 422: ErrorBody},
    ),
    Operation(
        "GET",
        "/api/v1/api_key/",
        list_api_keys,
        "List API keys (masked), revoked and expired ones included",
        scope="admin",
        tag="api_key",
        responses={200: ApiKeysResponse},
    ),
    Operation(
        "DELETE",
        "/api/v1/api_key/{api_key_id}",
        delete_api_key,
        "Revoke an API key",
        scope="admin",
        tag="api_key",
        responses={200: Deleted, 404: ErrorBody},
        params=(Param("api_key_id", "path", "The key's id", required=True),),
    ),
]
