"""Map every error to ``{"detail": ..., "code": ..., "request_id": ...}`` with its status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.wire import JSONResponse
from flowserve.errors import FlowserveError
from flowserve.logs import request_id_var

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


class ErrorBody(msgspec.Struct):
    detail: str
    code: str
    request_id: str


def error_response(
    status: int, detail: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        ErrorBody(detail, code, request_id_var.get()), status_code=status, headers=headers
    )


async def flowserve_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FlowserveError)
    return error_response(exc.status, exc.detail, exc.code, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.status_code != 404 else f"No route for {request.url.path}"
    return error_response(
        exc.status_code,
        detail,
        _HTTP_CODES.get(exc.status_code, "http_error"),
        dict(exc.headers) if exc.headers else None,
    )


Handler = Callable[[Request, Exception], Awaitable[Response]]

EXCEPTION_HANDLERS: dict[Any, Handler] = {
    FlowserveError: flowserve_error,
    HTTPException: http_error,
}
