"""The auth guard every route is wrapped in, driven by its ``Operation.scope``.

A key is read from the ``x-api-key`` header, the ``x-api-key`` query
parameter (Langflow's two ways) or ``Authorization: Bearer``. No key or a key
that opens nothing is a 401; a key without the route's scope, or restricted
to other flows, a 403. ``public`` routes are not wrapped at all. A route with
a ``{flow...}`` path parameter may also let anonymous callers in: runs of a
flow whose ``access_type`` is ``PUBLIC`` (rate limited per client address), and
webhooks of the flows listed in ``FLOWSERVE_OPEN_WEBHOOKS`` (ids or endpoint
names), or of every flow when ``FLOWSERVE_WEBHOOK_AUTH=false``. ``/metrics``
(``anonymous="scraper"``) also opens to ``FLOWSERVE_METRICS_TOKEN`` as a Bearer
token, or to anyone with ``FLOWSERVE_METRICS_PUBLIC=true``.

A key restricted to some flows may call routes naming one of its flows,
metadata routes, and routes whose ``Operation.filters_flows`` says the handler
filters by the caller (``may_touch``, ``flows_in_view``, ``check_flows``); any
other route spans every flow and answers 403. Such handlers show a restricted
key only its flows' data, and answer 403 when a body or query parameter names
another flow (or one that does not exist), exactly as a path naming it would.
The principal lands in ``request.state.principal``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from flowserve.access import ANONYMOUS, MISSING_KEY, UNRESTRICTED, Access, Principal
from flowserve.api.spec import Endpoint, Operation
from flowserve.errors import FlowNotAllowed, InsufficientScope, InvalidApiKey, MissingApiKey
from flowserve.store.base import FlowRecord, canonical_uuid

Anonymous = Literal["public_flow", "webhook", "scraper"]

_FLOW_PARAM = re.compile(r"\{(flow[a-z_]*)(?::[^}]*)?\}")
_BEARER = b"bearer "
_SPANS_FLOWS = (
    "This API key is restricted to some flows; this endpoint reaches every flow. "
    "Use a route that names one flow, or an unrestricted key"
)
# Routes about the server rather than any flow: open to flow-restricted keys.
_FLOWLESS_TAGS = frozenset({"meta", "health", "docs"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="flowserve"'}


def presented_key(request: Request) -> str | None:
    """The key the caller sent, if any (header first, then Bearer, then query)."""
    bearer: str | None = None
    for name, value in request.scope["headers"]:
        if name == b"x-api-key" and value:
            return str(value.decode("latin-1"))
        if name == b"authorization" and value[:7].lower() == _BEARER:
            bearer = value[7:].strip().decode("latin-1") or None
    if bearer is not None:
        return bearer
    query: bytes = request.scope.get("query_string", b"")
    if b"x-api-key=" in query:
        for name, value in parse_qsl(query.decode("latin-1")):
            if name == "x-api-key" and value:
                return value
    return None


def principal(request: Request) -> Principal:
    """Who is calling; anonymous on routes the guard does not wrap (``public`` ones)."""
    found: Principal = getattr(request.state, "principal", ANONYMOUS)
    return found


def may_touch(request: Request, record: FlowRecord) -> bool:
    """Whether the caller's key may see or use ``record``: for handlers that pick flows
    from a body or list them (flow listings, batch deletes, MCP tool calls)."""
    return principal(request).allows_flow(record.id, record.endpoint_name)


async def flows_in_view(request: Request) -> frozenset[str] | None:
    """The ids of the flows the caller's key may touch; None when it may touch every flow.

    A key may list endpoint names: they are resolved to the flows' ids here (a name
    no flow has is left out), so results can be filtered by the ids stored with them."""
    allowed = principal(request).flows
    if allowed is None:
        return None
    cached: frozenset[str] | None = getattr(request.state, "flows_in_view", None)
    if cached is not None:
        return cached
    ids: set[str] = set()
    for ref in allowed:
        flow_id = canonical_uuid(ref)
        if flow_id is None:
            record = await _flow(request, ref)
            flow_id = record.id if record is not None else None
        if flow_id is not None:
            ids.add(flow_id)
    view = frozenset(ids)
    request.state.flows_in_view = view
    return view


async def check_flows(request: Request, refs: Iterable[str]) -> None:
    """403 unless the caller may touch every flow in ``refs`` (ids or endpoint names named
    by a body or a query parameter); unknown flows are refused alike, as on paths."""
    caller = principal(request)
    if caller.flows is not None:
        for ref in refs:
            await _check_flow(request, caller, ref)


def flow_param(path: str) -> str | None:
    """The path parameter naming a flow (``{flow}``, ``{flow_id}``, ``{flow_id_or_name}``)."""
    match = _FLOW_PARAM.search(path)
    return match.group(1) if match else None


def anonymous_kind(op: Operation) -> Anonymous | None:
    kind = op.anonymous
    # Webhooks need no declaration: their path says what they are.
    if kind is None and op.path.startswith("/api/v1/webhook/"):
        kind = "webhook"
    return kind


def guard(op: Operation) -> Endpoint:
    """``op.endpoint`` behind the checks its scope asks for."""
    if op.scope == "public":
        return op.endpoint
    endpoint = op.endpoint
    scope = op.scope
    param = flow_param(op.path)
    kind = anonymous_kind(op) if param is not None else None
    scraper = op.anonymous == "scraper"
    spans_flows = param is None and not op.filters_flows and op.tag not in _FLOWLESS_TAGS

    async def guarded(request: Request) -> Response:
        access: Access = request.app.state.services.access
        if not access.enabled:
            request.state.principal = UNRESTRICTED
            return await endpoint(request)
        key = presented_key(request)
        if scraper and access.opens_metrics(key):
            request.state.principal = ANONYMOUS
            return await endpoint(request)
        ref = request.path_params.get(param) if param is not None else None
        if key is None:
            if (
                kind is not None
                and ref is not None
                and await _anonymous_allowed(request, access, kind, ref)
            ):
                request.state.principal = ANONYMOUS
                return await endpoint(request)
            raise MissingApiKey(MISSING_KEY, headers=_CHALLENGE)
        try:
            caller = await access.authenticate(key, client_address(request))
        except InvalidApiKey as exc:
            exc.headers.update(_CHALLENGE)
            raise
        _check_scope(caller, scope)
        if caller.flows is not None:
            if ref is not None:
                await _check_flow(request, caller, ref)
            elif spans_flows:
                raise FlowNotAllowed(_SPANS_FLOWS)
        await access.limit_key(caller)
        request.state.principal = caller
        return await endpoint(request)

    guarded.__name__ = endpoint.__name__
    guarded.__doc__ = endpoint.__doc__
    return guarded


def _check_scope(principal: Principal, scope: str) -> None:
    principal.require(scope)
    if scope == "admin" and principal.flows is not None:
        # A flow-restricted admin key could otherwise mint itself an unrestricted one.
        raise InsufficientScope("A key restricted to some flows cannot manage keys or settings")


async def _check_flow(request: Request, principal: Principal, ref: str) -> None:
    if principal.allows_flow(ref):
        return
    # The caller may name the flow by id while the key lists its endpoint name, or
    # the other way round. An unknown flow is refused the same way, so a
    # restricted key cannot probe which flows exist.
    record = await _flow(request, ref)
    if record is None or not principal.allows_flow(record.id, record.endpoint_name):
        raise FlowNotAllowed(f"This API key is not allowed to access flow {ref}")


async def _anonymous_allowed(request: Request, access: Access, kind: Anonymous, ref: str) -> bool:
    if kind == "webhook" and (not access.webhook_auth or ref in access.open_webhooks):
        return True
    record = await _flow(request, ref)
    if record is None:
        return False
    if kind == "webhook":
        return not access.open_webhooks.isdisjoint((record.id, record.endpoint_name))
    if record.access_type != "PUBLIC":
        return False
    await access.limit_client(client_address(request))
    return True


def client_address(request: Request) -> str:
    # The proxy-corrected address (uvicorn applies FLOWSERVE_FORWARDED_ALLOW_IPS).
    client = request.scope.get("client")
    return str(client[0]) if client else "unknown"


async def _flow(request: Request, ref: str) -> FlowRecord | None:
    record: FlowRecord | None = await request.app.state.services.flows.get(ref)
    return record
