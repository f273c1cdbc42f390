"""A direct line to the run route, past Starlette's router and its per-request wrappers.

``POST /api/v1/run/{flow}`` is what a flow server spends its life answering. Through
the full stack each call also pays for the exception middleware, the router, the
route's ``request_response`` wrapper and two rounds of exception-handler closures:
a good part of a bare request's cost again. ``HotRoutes`` sits just inside the
request-context middleware, matches the hot routes itself (with the routes' own
``matches``, so root paths and converters behave the same), calls the guarded
endpoint and maps its errors with the app's own handlers. Everything else, and
anything the hot routes do not match, goes down the normal stack unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from flowserve.api.errors import EXCEPTION_HANDLERS, Handler

HOT_PATHS = frozenset({"/api/v1/run/{flow}"})


class HotRoutes:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes: Mapping[str, tuple[Route, ...]] = _by_method(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes.get(scope["method"], ()):
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope["route"] = route  # what the router records (metrics, logs)
                    await _serve(route, Request(scope, receive, send), scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _serve(
    route: Route, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    try:
        response: Response = await route.endpoint(request)
    except Exception as exc:
        handler = _handler(exc)
        if handler is None:
            raise
        response = await handler(request, exc)
    await response(scope, receive, send)


def _handler(exc: Exception) -> Handler | None:
    for cls in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            return handler
    return None


def _by_method(routes: Sequence[BaseRoute]) -> dict[str, tuple[Route, ...]]:
    found: dict[str, list[Route]] = {}
    for route in routes:
        if isinstance(route, Route) and route.path in HOT_PATHS:
            for method in route.methods or ():
                found.setdefault(method, []).append(route)
    return {method: tuple(rs) for method, rs in found.items()}
