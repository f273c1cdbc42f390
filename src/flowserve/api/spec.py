"""One description per operation, shared by the router and the OpenAPI generator.

Each route module lists its ``Operation``s; ``routes.py`` turns them into
Starlette routes and ``openapi.py`` into the spec, so a route cannot exist
without being documented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]
Scope = Literal["public", "read", "execute", "write", "admin"]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    description: str = ""
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    endpoint: Endpoint
    summary: str
    scope: Scope
    tag: str
    # Structs (or None) describing the bodies; responses by status code.
    request: Any = None
    responses: dict[int, Any] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    content_type: str = "application/json"
    # Extra response media types by status (e.g. the event stream of /run).
    streams: dict[int, str] = field(default_factory=dict)
    include_in_schema: bool = True
    # Who may call without a key (see api/auth.py): runs of PUBLIC flows, webhooks of
    # flows that opt out of webhook auth, or a metrics scraper (its token, or when public).
    anonymous: Literal["public_flow", "webhook", "scraper"] | None = None
    # The handler itself keeps flow-restricted keys to their flows (api.auth.may_touch);
    # without it such keys may only call routes naming one flow, and metadata.
    filters_flows: bool = False
