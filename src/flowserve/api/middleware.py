"""Pure-ASGI middleware: request id, access log, HTTP metrics, and the last-resort 500."""

from __future__ import annotations

import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowserve.api.errors import ErrorBody
from flowserve.api.wire import encode
from flowserve.engine.types import new_id
from flowserve.logs import AccessLine, access_fields, request_id_var, write_access
from flowserve.metrics import Metrics

log = structlog.get_logger("flowserve.access")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContextMiddleware:
    """Give every request an id (honouring a sane ``X-Request-ID``), echo it, log the request.

    Each request is logged once, when its response is complete (for a stream:
    when it ends), with the client address as the trusted proxy reported it,
    the route template, status and duration; its latency goes to the
    ``flowserve_http_request_duration_seconds`` histogram by route template.
    An exception that escapes every handler is our bug: it is logged with its
    traceback and the client gets a 500 saying only "internal error".
    """

    def __init__(
        self, app: ASGIApp, *, access_log: bool = True, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        user_agent = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(candidate):
                    request_id = candidate
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")[:200]
        request_id = request_id or new_id().replace("-", "")
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = False
        begin = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            if not started:
                body = encode(ErrorBody("internal error", "internal_error", request_id))
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            header,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - begin
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if self.metrics is not None:
                self.metrics.http_request(scope["method"], template, status, elapsed)
            if self.access_log:
                self._log_access(scope, template, status, elapsed, user_agent)
            request_id_var.reset(token)

    @staticmethod
    def _log_access(
        scope: Scope, template: str, status: int, elapsed: float, user_agent: str
    ) -> None:
        client = scope.get("client")
        line = AccessLine(
            method=scope["method"],
            path=scope["path"],
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 3),
            client=client[0] if client else None,
            scheme=scope.get("scheme"),
            user_agent=user_agent,
        )
        if not write_access(line):  # text logs, or a stream structlog owns
            log.info("request", **access_fields(line))
