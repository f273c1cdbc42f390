"""Outgoing event webhooks of a flow: ``/api/v1/flows/{flow_id}/subscriptions``.

Each subscription names a URL, the events it wants and a signing secret
(``whsec_...``, generated unless given; returned only when created or
rotated). ``GET .../deliveries`` is the delivery log, newest first.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse, decode, read_body
from flowserve.bootstrap import Services
from flowserve.errors import FlowNotFound, Invalid, NotFound
from flowserve.jobs.delivery import check_url
from flowserve.jobs.events import EVENTS
from flowserve.jobs.signing import new_secret, valid_secret
from flowserve.store.jobs import DeliveryAttempt, Subscription

Event = Literal["flow_started", "flow_completed", "flow_error", "component_completed"]


class SubscriptionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    events: list[Event] = msgspec.field(default_factory=lambda: list(EVENTS))  # type: ignore[arg-type]
    secret: str | None = None
    description: str = ""
    enabled: bool = True


class SubscriptionUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str | None = None
    events: list[Event] | None = None
    description: str | None = None
    enabled: bool | None = None
    rotate_secret: bool = False


class SubscriptionBody(msgspec.Struct, kw_only=True):
    id: str
    flow_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    created_at: float
    # Only in the answers to create and rotate.
    secret: str | None = None


class SubscriptionList(msgspec.Struct):
    subscriptions: list[SubscriptionBody]


class DeliveryLog(msgspec.Struct):
    deliveries: list[DeliveryAttempt]


class NoSubscription(NotFound):
    code = "subscription_not_found"


def body(sub: Subscription, *, with_secret: bool = False) -> SubscriptionBody:
    return SubscriptionBody(
        id=sub.id,
        flow_id=sub.flow_id,
        url=sub.url,
        events=sub.events,
        description=sub.description,
        enabled=sub.enabled,
        created_at=sub.created_at,
        secret=sub.secret if with_secret else None,
    )


async def _flow_id(request: Request) -> tuple[Services, str]:
    services: Services = request.app.state.services
    ref = request.path_params["flow_id"]
    record = await services.flows.get(ref)
    if record is None:
        raise FlowNotFound(ref)
    return services, record.id


async def _subscription(request: Request) -> tuple[Services, Subscription]:
    services, flow_id = await _flow_id(request)
    sid = request.path_params["subscription_id"]
    sub = await services.jobs.subscriptions.get(flow_id, sid)
    if sub is None:
        raise NoSubscription(f"Subscription {sid} of flow {flow_id} not found")
    return services, sub


def _events(events: list[Event]) -> list[str]:
    if not events:
        raise Invalid(f"events must name at least one of {', '.join(EVENTS)}")
    return [e for e in EVENTS if e in events]


async def _saved(services: Services, sub: Subscription) -> None:
    await services.jobs.subscriptions.put(sub)
    services.jobs.publisher.forget(sub.flow_id)


async def create_subscription(request: Request) -> Response:
    services, flow_id = await _flow_id(request)
    spec = decode(await read_body(request), SubscriptionCreate)
    await check_url(spec.url, services.jobs.allow)
    if spec.secret is not None and not valid_secret(spec.secret):
        raise Invalid("secret must be 'whsec_' followed by base64 of 24 to 64 bytes")
    sub = Subscription(
        id=uuid.uuid4().hex,
        flow_id=flow_id,
        url=spec.url,
        events=_events(spec.events),
        secret=spec.secret or new_secret(),
        description=spec.description,
        enabled=spec.enabled,
        created_at=time.time(),
    )
    await _saved(services, sub)
    return JSONResponse(body(sub, with_secret=True), status_code=201)


async def list_subscriptions(request: Request) -> Response:
    services, flow_id = await _flow_id(request)
    subs = await services.jobs.subscriptions.of_flow(flow_id)
    return JSONResponse(SubscriptionList([body(s) for s in subs]))


async def get_subscription(request: Request) -> Response:
    _, sub = await _subscription(request)
    return JSONResponse(body(sub))


async def update_subscription(request: Request) -> Response:
    services, sub = await _subscription(request)
    spec = decode(await read_body(request), SubscriptionUpdate)
    changes: dict[str, object] = {}
    if spec.url is not None:
        await check_url(spec.url, services.jobs.allow)
        changes["url"] = spec.url
    if spec.events is not None:
        changes["events"] = _events(spec.events)
    if spec.description is not None:
        changes["description"] = spec.description
    if spec.enabled is not None:
        changes["enabled"] = spec.enabled
    if spec.rotate_secret:
        changes["secret"] = new_secret()
    sub = msgspec.structs.replace(sub, **changes)
    await _saved(services, sub)
    return JSONResponse(body(sub, with_secret=spec.rotate_secret))


async def delete_subscription(request: Request) -> Response:
    services, sub = await _subscription(request)
    await services.jobs.subscriptions.delete(sub.flow_id, sub.id)
    services.jobs.publisher.forget(sub.flow_id)
    return Response(status_code=204)


async def list_deliveries(request: Request) -> Response:
    services, sub = await _subscription(request)
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise Invalid("limit must be an integer from 1 to 200")
    return JSONResponse(DeliveryLog(await services.jobs.subscriptions.deliveries(sub.id, int(raw))))


_FLOW = Param("flow_id", "path", "Flow UUID or endpoint name", required=True)
_SUB = Param("subscription_id", "path", "Subscription id", required=True)
_BASE = "/api/v1/flows/{flow_id}/subscriptions"
_ERRORS = {404: ErrorBody, 422: ErrorBody}

OPERATIONS = [
    Operation(
        "POST",
        _BASE,
        create_subscription,
        "Subscribe a URL to a flow's run events (signed per Standard Webhooks)",
        scope="write",
        tag="webhooks",
        request=SubscriptionCreate,
        responses={201: SubscriptionBody, 400: ErrorBody, **_ERRORS},
        params=(_FLOW,),
    ),
    Operation(
        "GET",
        _BASE,
        list_subscriptions,
        "A flow's event subscriptions",
        scope="read",
        tag="webhooks",
        responses={200: SubscriptionList, 404: ErrorBody},
        params=(_FLOW,),
    ),
    Operation(
        "GET",
        _BASE + "/{subscription_id}",
        get_subscription,
        "One event subscription",
        scope="read",
        tag="webhooks",
        responses={200: SubscriptionBody, 404: ErrorBody},
        params=(_FLOW, _SUB),
    ),
    Operation(
        "PATCH",
        _BASE + "/{subscription_id}",
        update_subscription,
        "Change an event subscription, or rotate its secret",
        scope="write",
        tag="webhooks",
        request=SubscriptionUpdate,
        responses={200: SubscriptionBody, 400: ErrorBody, **_ERRORS},
        params=(_FLOW, _SUB),
    ),
    Operation(
        "DELETE",
        _BASE + "/{subscription_id}",
        delete_subscription,
        "Delete an event subscription and its delivery log",
        scope="write",
        tag="webhooks",
        responses={204: None, 404: ErrorBody},
        params=(_FLOW, _SUB),
    ),
    Operation(
        "GET",
        _BASE + "/{subscription_id}/deliveries",
        list_deliveries,
        "The subscription's delivery log, newest first",
        scope="read",
        tag="webhooks",
        responses={200: DeliveryLog, 404: ErrorBody, 422: ErrorBody},
        params=(
            _FLOW,
            _SUB,
            Param("limit", "query", "At most this many (1-200)", {"type": "integer"}),
        ),
    ),
]
