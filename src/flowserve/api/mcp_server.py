"""The MCP server proper (the SDK side): imported on the first MCP request (``api/mcp.py``).

Every ``mcp_enabled`` flow is a tool, over Streamable HTTP and SSE.

Paths are Langflow's: Streamable HTTP at ``/api/v1/mcp/streamable``, SSE at
``GET /api/v1/mcp/sse`` with messages posted to ``/api/v1/mcp/``, and the same
per project (a flow's ``folder_id``) under ``/api/v1/mcp/project/{project_id}``.

Tools are computed on each ``tools/list`` and ``tools/call`` from the flow
store (``flowtools.py``), never registered, so a flow saved through any
instance is a tool on every instance at its next request. Connections that
stay open (SSE, and Streamable HTTP when ``FLOWSERVE_MCP_STATELESS=false``)
are also sent ``notifications/tools/list_changed``: ``ToolWatch`` polls the
store while such connections exist and notifies those whose last listing is
out of date.

Every HTTP request passes the route guard like any operation (a key with the
``execute`` scope); a key restricted to some flows sees only those as tools.
The MCP session is bound to the key that opened it, so a session id is
useless with another key.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import structlog
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from flowserve import __version__
from flowserve.access import Principal
from flowserve.api.auth import principal
from flowserve.api.run import header_variables
from flowserve.bootstrap import Services
from flowserve.errors import FlowserveError, NotFound
from flowserve.files import owner_of
from flowserve.flowtools import (
    FlowTool,
    build_tools,
    enabled_flows,
    fingerprint,
    run_request,
    tool_output,
)
from flowserve.mcp_clients import MCP_PREFIX
from flowserve.settings import Settings
from flowserve.store.base import FlowRecord, FlowStore

log = structlog.get_logger(__name__)

PREFIX = MCP_PREFIX
SERVER_NAME = "flowserve"
_PROJECT_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_SESSION_HEADER = "mcp-session-id"
_NOTIFY_TIMEOUT = 2.0

Fingerprint = frozenset[tuple[str, int, str | None]]


class ToolWatch:
    """Tell open MCP connections when the tools they listed have changed.

    Each connection that listed tools is remembered by its transport session
    id, with a handle to its standalone channel, the project it listed and
    what it saw; ``run`` polls the flow store every ``interval`` seconds while
    any are remembered. Polling the shared store makes this work across
    instances without a message bus. A connection that has gone away is
    forgotten when a notification to it fails.
    """

    def __init__(self, interval: float, *, limit: int = 10_000) -> None:
        self.interval = interval
        self.limit = limit
        self._seen: dict[str, _Listing] = {}

    def saw(
        self, key: str, session: ServerSession, project_id: str | None, seen: Fingerprint
    ) -> None:
        self._seen.pop(key, None)
        if len(self._seen) >= self.limit:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = _Listing(session, project_id, seen)

    def __len__(self) -> int:
        return len(self._seen)

    async def run(self, store: FlowStore) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._seen:
                try:
                    await self.check(store)
                except FlowserveError as exc:
                    log.warning("mcp_watch_failed", detail=exc.detail)

    async def check(self, store: FlowStore) -> None:
        records = await enabled_flows(store)
        stale: list[tuple[str, _Listing]] = []
        for key, listing in list(self._seen.items()):
            project_id = listing.project_id
            current = fingerprint(
                [r for r in records if project_id is None or r.folder_id == project_id]
            )
            if current != listing.seen:
                listing.seen = current
                stale.append((key, listing))
        await asyncio.gather(*(self._notify(key, listing) for key, listing in stale))

    async def _notify(self, key: str, listing: _Listing) -> None:
        try:
            async with asyncio.timeout(_NOTIFY_TIMEOUT):
                await listing.session.send_tool_list_changed()
        except Exception as exc:  # the connection is gone: forget it
            log.debug("mcp_notify_dropped", error=repr(exc))
            if self._seen.get(key) is listing:
                del self._seen[key]


@dataclass(slots=True)
class _Listing:
    session: ServerSession
    project_id: str | None
    seen: Fingerprint


class FlowToolServer(Server[Any]):
    """The low-level MCP server, answering tools/list and tools/call from the flow store."""

    def __init__(self, watch: ToolWatch, *, push_changes: bool) -> None:
        super().__init__(
            SERVER_NAME,
            version=__version__,
            instructions="Each tool runs one flow served by flowserve and answers with "
            "the flow's output. Pass session_id to keep a conversation's memory.",
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
        )
        self.watch = watch
        self.push_changes = push_changes

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=self.push_changes)
        return super().create_initialization_options(options, experimental_capabilities, extensions)

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        request = _http_request(ctx)
        services: Services = request.app.state.services
        project_id = request.path_params.get("project_id")
        records = await _callable_flows(request, services, project_id)
        connection = _connection_key(request) if self.push_changes else None
        if connection is not None:
            self.watch.saw(connection, ctx.session, project_id, fingerprint(records))
        return types.ListToolsResult(tools=[_wire_tool(t) for t in build_tools(records)])

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        request = _http_request(ctx)
        services: Services = request.app.state.services
        project_id = request.path_params.get("project_id")
        tools = build_tools(await _callable_flows(request, services, project_id))
        tool = next((t for t in tools if t.name == params.name), None)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        try:
            return await _run_tool(
                services, tool, params.arguments, header_variables(request), principal(request)
            )
        except FlowserveError as exc:
            log.info("mcp_tool_failed", tool=tool.name, code=exc.code, detail=exc.detail)
            return _error_result(exc.detail)
        except Exception:
            log.exception("mcp_tool_crashed", tool=tool.name)
            return _error_result("internal error")


async def _callable_flows(
    request: Request, services: Services, project_id: str | None
) -> list[FlowRecord]:
    """The tools' flows this caller may use: a key restricted to some flows sees only those."""
    caller = principal(request)
    records = await enabled_flows(services.flows, project_id)
    return [r for r in records if caller.allows_flow(r.id, r.endpoint_name)]


async def _run_tool(
    services: Services,
    tool: FlowTool,
    arguments: Mapping[str, Any] | None,
    variables: Mapping[str, str],
    caller: Principal,
) -> types.CallToolResult:
    prepared = await services.runner.prepare(
        tool.flow_id, run_request(tool, arguments), variables, owner_of(caller)
    )
    output = tool_output(await services.runner.execute(prepared))
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=output.text)],
        structured_content=output.structured,
    )


def _error_result(detail: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=detail)], is_error=True
    )


def _wire_tool(tool: FlowTool) -> types.Tool:
    return types.Tool(name=tool.name, description=tool.description, input_schema=tool.input_schema)


def _http_request(ctx: ServerRequestContext[Any]) -> Request:
    request = ctx.request
    if not isinstance(request, Request):  # only HTTP transports are mounted
        raise MCPError(types.INTERNAL_ERROR, "flowserve serves MCP over HTTP only")
    return request


def _connection_key(request: Request) -> str | None:
    """The connection a request belongs to, when notifications can reach it later."""
    if request.scope.get("flowserve.mcp") == "sse":
        session_id = request.query_params.get("session_id")
        return f"sse:{session_id}" if session_id else None
    session_id = request.headers.get(_SESSION_HEADER)
    return f"http:{session_id}" if session_id else None


class McpRuntime:
    """The per-app MCP state: servers, transports and the watcher, run inside the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.watch = ToolWatch(settings.mcp_watch_interval)
        self.http_server = FlowToolServer(self.watch, push_changes=not settings.mcp_stateless)
        self.sse_server = FlowToolServer(self.watch, push_changes=True)
        self.streamable = StreamableHTTPSessionManager(
            self.http_server,
            stateless=settings.mcp_stateless,
            max_request_body_size=settings.max_body_bytes,
        )
        self._sse: dict[str, SseServerTransport] = {}

    @asynccontextmanager
    async def run(self, services: Services) -> AsyncIterator[None]:
        """Run the session manager and the watcher for the app's lifetime.

        The manager holds an anyio task group, which must be entered and left
        by one task; hosts may run a lifespan's start and end in different
        tasks, so the manager lives in a task of its own.
        """
        started = asyncio.Event()
        stop = asyncio.Event()

        async def hold_manager() -> None:
            async with self.streamable.run():
                started.set()
                await stop.wait()

        manager = asyncio.create_task(hold_manager())
        watcher = asyncio.create_task(self.watch.run(services.flows))
        try:
            await _first(started.wait(), manager)
            yield
        finally:
            stop.set()
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            await manager

    def sse_transport(self, project_id: str | None, *, create: bool) -> SseServerTransport | None:
        endpoint = f"{PREFIX}/" if project_id is None else f"{PREFIX}/project/{project_id}"
        transport = self._sse.get(endpoint)
        if transport is None and create:
            transport = self._sse[endpoint] = SseServerTransport(endpoint)
        return transport

    async def serve_sse(
        self, transport: SseServerTransport, scope: Scope, receive: Receive, send: Send
    ) -> None:
        async with transport.connect_sse(scope, receive, send) as (read_stream, write_stream):
            await self.sse_server.run(
                read_stream, write_stream, self.sse_server.create_initialization_options()
            )


async def _first(ready: Awaitable[bool], task: asyncio.Task[None]) -> None:
    """Wait for ``ready``, or raise what ``task`` failed with if it ends first."""
    waiter = asyncio.ensure_future(ready)
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        waiter.cancel()
        task.result()
        raise RuntimeError("the MCP session manager stopped while starting")


def admit(request: Request, transport: str) -> None:
    """Bind the MCP session to the caller and check the project id (404).

    The route guard (``api/auth.py``) has already authenticated the key (401)
    and checked the ``execute`` scope (403), as for every operation.
    """
    project_id = request.path_params.get("project_id")
    if project_id is not None and not _PROJECT_ID.match(project_id):
        raise NotFound(f"Project {project_id} not found")
    caller = principal(request)
    # The SDK binds each MCP session to the principal that opened it.
    token = AccessToken(token="", client_id=caller.id, scopes=sorted(caller.scopes))
    request.scope["user"] = AuthenticatedUser(token)
    request.scope["flowserve.mcp"] = transport
