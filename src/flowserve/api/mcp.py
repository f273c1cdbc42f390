"""MCP routes: Langflow's paths, with the MCP SDK loaded on the first MCP request.

Paths are Langflow's: Streamable HTTP at ``/api/v1/mcp/streamable``, SSE at
``GET /api/v1/mcp/sse`` with messages posted to ``/api/v1/mcp/``, and the same
per project (a flow's ``folder_id``) under ``/api/v1/mcp/project/{project_id}``.
The server itself is ``api/mcp_server.py``.

The SDK (with pydantic) is most of a started server's memory and import time,
and most deployments never speak MCP: ``LazyMcp`` imports it and starts the
session manager and tool watcher when the first MCP request arrives, and
stops them with the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.spec import Scope as ScopeName
from flowserve.errors import FlowserveError, NotFound
from flowserve.mcp_clients import MCP_PREFIX
from flowserve.settings import Settings

if TYPE_CHECKING:
    from flowserve.api.mcp_server import McpRuntime
    from flowserve.bootstrap import Services

PREFIX = MCP_PREFIX
SCOPE: ScopeName = "execute"


class StatelessMethod(FlowserveError):
    status = 405
    code = "method_not_allowed"


class LazyMcp:
    """The app's MCP runtime, created and started on first use, stopped with the app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._services: Services | None = None
        self._runtime: McpRuntime | None = None
        self._running: AbstractAsyncContextManager[None] | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def run(self, services: Services) -> AsyncIterator[None]:
        """The app's lifetime: MCP may start inside it, and stops at its end."""
        self._services = services
        try:
            yield
        finally:
            self._services = None
            running, self._running, self._runtime = self._running, None, None
            if running is not None:
                await running.__aexit__(None, None, None)

    async def runtime(self) -> McpRuntime:
        if self._runtime is not None:
            return self._runtime
        async with self._lock:
            if self._runtime is None:
                if self._services is None:
                    raise NotFound("MCP is not available: the server is not running")
                from flowserve.api.mcp_server import McpRuntime

                runtime = McpRuntime(self.settings)
                running = runtime.run(self._services)
                await running.__aenter__()
                self._running, self._runtime = running, runtime
            return self._runtime


class ASGIDelegate(Response):
    """Hand the request to an ASGI app (an MCP transport) once the endpoint has vetted it."""

    def __init__(self, app: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)  # type: ignore[operator]


async def _admit(request: Request, transport: str) -> McpRuntime:
    from flowserve.api.mcp_server import admit

    lazy: LazyMcp = request.app.state.mcp
    runtime = await lazy.runtime()
    admit(request, transport)
    return runtime


async def streamable(request: Request) -> Response:
    runtime = await _admit(request, "streamable")
    if runtime.streamable.stateless and request.method != "POST":
        # No session to stream to or to end: every request stands alone.
        raise StatelessMethod(
            "This MCP endpoint is stateless: POST each JSON-RPC message",
            headers={"Allow": "POST"},
        )
    return ASGIDelegate(runtime.streamable.handle_request)


async def sse(request: Request) -> Response:
    runtime = await _admit(request, "sse")
    transport = runtime.sse_transport(request.path_params.get("project_id"), create=True)
    assert transport is not None

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        await runtime.serve_sse(transport, scope, receive, send)

    return ASGIDelegate(serve)


async def sse_message(request: Request) -> Response:
    runtime = await _admit(request, "sse")
    transport = runtime.sse_transport(request.path_params.get("project_id"), create=False)
    if transport is None:
        raise NotFound("No MCP SSE connection is open at this path: connect to its sse URL first")
    return ASGIDelegate(transport.handle_post_message)


_ERRORS = {
    401: ErrorBody,
    403: ErrorBody,
    404: ErrorBody,
    405: ErrorBody,
    413: ErrorBody,
    422: ErrorBody,
}
_PROJECT = (Param("project_id", "path", "Project (folder) id: only its flows are tools"),)
_STREAMABLE = "MCP Streamable HTTP endpoint (JSON-RPC): every mcp_enabled flow is a tool"
_SSE = "MCP SSE stream (legacy transport); its first event names the message URL"
_MESSAGE = "Post an MCP message to an open SSE connection (?session_id=...)"


def _operations(base: str, params: tuple[Param, ...], scope_note: str) -> list[Operation]:
    streams = {200: "text/event-stream"}
    return [
        *(
            Operation(
                method,
                f"{base}/streamable",
                streamable,
                f"{_STREAMABLE}{scope_note}",
                scope=SCOPE,
                tag="mcp",
                filters_flows=True,
                # 400: the MCP SDK's JSON-RPC error for a message it cannot parse.
                responses={200: None, 202: None, 400: None, **_ERRORS},
                streams=streams,
                params=params,
            )
            for method in ("POST", "GET", "DELETE")
        ),
        Operation(
            "GET",
            f"{base}/sse",
            sse,
            f"{_SSE}{scope_note}",
            scope=SCOPE,
            tag="mcp",
            filters_flows=True,
            responses={200: None, **_ERRORS},
            streams=streams,
            params=params,
        ),
        Operation(
            "POST",
            f"{base}/" if not params else base,
            sse_message,
            f"{_MESSAGE}{scope_note}",
            scope=SCOPE,
            tag="mcp",
            filters_flows=True,
            responses={202: None, **_ERRORS},
            params=(*params, Param("session_id", "query", "The SSE session", required=True)),
        ),
    ]


OPERATIONS = [
    *_operations(PREFIX, (), ""),
    *_operations(f"{PREFIX}/project/{{project_id}}", _PROJECT, " (one project's flows)"),
]
