"""Conversation messages: Langflow's ``/api/v1/monitor/messages`` and our ``/api/v1/sessions``.

Reading a session counts as using it: its sliding TTL starts again. A key
restricted to some flows sees and deletes only those flows' messages; a
``flow_id`` naming another flow is a 403, as a path naming it would be.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.auth import check_flows, flows_in_view
from flowserve.api.errors import ErrorBody
from flowserve.api.flow_types import MessageRead, SessionDeleted, SessionMessages, message_read
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse
from flowserve.engine.types import Message
from flowserve.errors import Invalid, SessionNotFound
from flowserve.store.base import MessageStore, canonical_uuid


def _store(request: Request) -> MessageStore:
    store: MessageStore = request.app.state.services.messages
    return store


def _order(request: Request) -> str:
    order = request.query_params.get("order", "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise Invalid("Query parameter 'order' must be ASC or DESC")
    order_by = request.query_params.get("order_by", "timestamp")
    if order_by != "timestamp":
        raise Invalid("Messages can only be ordered by timestamp")
    return order


async def _flows(request: Request) -> list[str | None]:
    """The flows to look in: the ``flow_id`` asked for (None: every flow), or, for a key
    restricted to some flows, each of its flows."""
    flow_id = request.query_params.get("flow_id")
    if flow_id is not None:
        canonical = canonical_uuid(flow_id)
        if canonical is None:
            raise Invalid(f"flow_id '{flow_id}' is not a UUID")
        await check_flows(request, [canonical])
        return [canonical]
    view = await flows_in_view(request)
    if view is None:
        return [None]
    return [*sorted(view)]


async def _messages(
    request: Request,
    *,
    session_id: str | None,
    sender: str | None = None,
    sender_name: str | None = None,
) -> list[Message]:
    store, order = _store(request), _order(request)
    found: list[Message] = []
    for flow_id in await _flows(request):
        found.extend(
            await store.messages(
                flow_id=flow_id,
                session_id=session_id,
                sender=sender,
                sender_name=sender_name,
                order=order,
            )
        )
    found.sort(key=lambda m: m.timestamp, reverse=order == "DESC")  # several flows: merge
    return found


async def _delete(request: Request, session_id: str) -> int:
    store = _store(request)
    return sum([await store.delete_session(f, session_id) for f in await _flows(request)])


async def monitor_messages(request: Request) -> Response:
    params = request.query_params
    messages = await _messages(
        request,
        session_id=params.get("session_id"),
        sender=params.get("sender"),
        sender_name=params.get("sender_name"),
    )
    return JSONResponse([message_read(m) for m in messages])


async def monitor_sessions(request: Request) -> Response:
    store = _store(request)
    sessions: set[str] = set()
    for flow_id in await _flows(request):
        sessions.update(await store.sessions(flow_id))
    return JSONResponse(sorted(sessions))


async def monitor_delete_session(request: Request) -> Response:
    await _delete(request, request.path_params["session_id"])
    return Response(status_code=204)


async def read_session(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    messages = await _messages(request, session_id=session_id)
    if not messages:
        raise SessionNotFound(f"Session {session_id} not found (or expired)")
    return JSONResponse(SessionMessages(session_id, [message_read(m) for m in messages]))


async def delete_session(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    deleted = await _delete(request, session_id)
    if not deleted:
        raise SessionNotFound(f"Session {session_id} not found (or expired)")
    return JSONResponse(SessionDeleted(session_id, deleted))


_SESSION = Param("session_id", "path", "Session id", required=True)
_FLOW = Param("flow_id", "query", "Only this flow's messages (UUID)")
_ORDER = Param("order", "query", "ASC or DESC by timestamp", {"type": "string", "default": "ASC"})
_E: dict[int, Any] = {401: ErrorBody, 422: ErrorBody, 503: ErrorBody}

OPERATIONS = [
    Operation(
        "GET",
        "/api/v1/monitor/messages",
        monitor_messages,
        "Stored messages, filtered by flow, session and sender",
        scope="read",
        tag="monitor",
        responses={200: list[MessageRead], **_E},
        params=(
            _FLOW,
            Param("session_id", "query", "Only this session's messages"),
            Param("sender", "query", "User or Machine"),
            Param("sender_name", "query", "Only messages with this sender name"),
            Param("order_by", "query", "timestamp", {"type": "string", "default": "timestamp"}),
            _ORDER,
        ),
        filters_flows=True,
    ),
    Operation(
        "GET",
        "/api/v1/monitor/messages/sessions",
        monitor_sessions,
        "Ids of the live sessions (of one flow with flow_id)",
        scope="read",
        tag="monitor",
        responses={200: list[str], **_E},
        params=(_FLOW,),
        filters_flows=True,
    ),
    Operation(
        "DELETE",
        "/api/v1/monitor/messages/session/{session_id}",
        monitor_delete_session,
        "Delete a session's messages in every flow (Langflow)",
        scope="write",
        tag="monitor",
        responses={204: None, **_E},
        params=(_SESSION,),
        filters_flows=True,
    ),
    Operation(
        "GET",
        "/api/v1/sessions/{session_id}",
        read_session,
        "A session's messages (refreshes its TTL)",
        scope="read",
        tag="sessions",
        responses={200: SessionMessages, 404: ErrorBody, **_E},
        params=(_SESSION, _FLOW, _ORDER),
        filters_flows=True,
    ),
    Operation(
        "DELETE",
        "/api/v1/sessions/{session_id}",
        delete_session,
        "Clear a session (in one flow with flow_id, else in every flow)",
        scope="write",
        tag="sessions",
        responses={200: SessionDeleted, 404: ErrorBody, **_E},
        params=(_SESSION, _FLOW),
        filters_flows=True,
    ),
]
