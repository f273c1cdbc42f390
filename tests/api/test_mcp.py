"""MCP: flows as tools, driven by the official SDK client over a real socket.

Both transports (Streamable HTTP and SSE), with the key check on: tools are
listed from the flow store, a call runs the flow, a flow saved later appears,
and without a key nothing is served.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from flowserve.bootstrap import Services, record_from_document
from flowserve.components import BUILTIN, build_registry
from flowserve.engine import Component, Input, NodeContext, Output
from flowserve.engine.types import Data, to_text
from tests.conftest import FLOWS, LiveServer
from tests.helpers import edge, flow, make_registry, node

KEY = "sk-mcp-test-key"
PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
SECOND = "0b7f4a52-5d7e-4d0c-b0b7-6a3f0e8e9c22"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}


class Notifications:
    """What the server notified a client of; ``tools_changed`` is set on tools/list_changed."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self.tools_changed = asyncio.Event()

    def record(self, method: str) -> None:
        self.methods.append(method)
        if method == "notifications/tools/list_changed":
            self.tools_changed.set()


def prompt_echo(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FLOWS / "prompt-echo.json").read_text())
    document["mcp_enabled"] = True
    document.update(changes)
    return document


@pytest.fixture
def mcp_flows(flows_dir: Path) -> Path:
    """The test's flows: prompt-echo exposed as a tool; hello-world left out."""
    (flows_dir / "prompt-echo.json").write_text(json.dumps(prompt_echo()))
    return flows_dir


@pytest.fixture
def server(live_server: Callable[..., LiveServer], mcp_flows: Path) -> LiveServer:
    return live_server(auth="on", api_key=KEY, mcp_watch_interval=0.05)


def services(server: LiveServer) -> Services:
    found: Services = server.app.state.services
    return found


async def save_flow(server: LiveServer, document: dict[str, Any]) -> None:
    await services(server).catalog.upsert(record_from_document(document))


@asynccontextmanager
async def streamable(
    url: str, headers: dict[str, str], seen: Notifications | None = None
) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, message_handler=_recorder(seen)) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def modern(
    url: str, headers: dict[str, str], seen: Notifications | None = None
) -> AsyncIterator[ClientSession]:
    """The 2026-07-28 protocol: no handshake, every request stands alone."""
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, message_handler=_recorder(seen)) as session,
    ):
        await session.discover()
        assert session.protocol_version == "2026-07-28"
        yield session


@asynccontextmanager
async def sse(
    url: str, headers: dict[str, str], seen: Notifications | None = None
) -> AsyncIterator[ClientSession]:
    async with (
        sse_client(url, headers=headers) as (read, write),
        ClientSession(read, write, message_handler=_recorder(seen)) as session,
    ):
        await session.initialize()
        yield session


def _recorder(seen: Notifications | None) -> Any:
    async def record(message: IncomingMessage) -> None:
        method = getattr(message, "method", None)
        if seen is not None and isinstance(method, str):
            seen.record(method)

    return record


CONNECT = {
    "streamable": (streamable, "/api/v1/mcp/streamable"),
    "sse": (sse, "/api/v1/mcp/sse"),
    "modern": (modern, "/api/v1/mcp/streamable"),
}


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("transport", ["streamable", "sse", "modern"])
async def test_client_lists_flows_as_tools_and_calls_one(
    server: LiveServer, transport: str
) -> None:
    connect, path = CONNECT[transport]
    async with server, connect(server.url + path, {"x-api-key": KEY}) as session:
        listed = await session.list_tools()
        assert [t.name for t in listed.tools] == ["prompt-echo"]
        tool = listed.tools[0]
        assert tool.description == "Perform basic prompting with an OpenAI model."
        assert tool.input_schema["required"] == ["input_value"]
        assert set(tool.input_schema["properties"]) == {"input_value", "session_id"}

        result = await session.call_tool("prompt-echo", {"input_value": "what is 2+2?"})
        assert not result.is_error
        assert text_of(result) == "You are terse. Question: what is 2+2?"


@pytest.mark.parametrize("transport", ["streamable", "sse", "modern"])
async def test_flow_saved_after_connecting_appears_in_the_list(
    server: LiveServer, transport: str
) -> None:
    connect, path = CONNECT[transport]
    async with server, connect(server.url + path, {"Authorization": f"Bearer {KEY}"}) as session:
        before = await session.list_tools()
        assert [t.name for t in before.tools] == ["prompt-echo"]

        second = prompt_echo(
            id="0b7f4a52-5d7e-4d0c-b0b7-6a3f0e8e9c21",
            name="Second Echo",
            endpoint_name=None,
            description="",
        )
        await save_flow(server, second)

        after = await session.list_tools()
        assert [t.name for t in after.tools] == ["prompt-echo", "second_echo"]
        result = await session.call_tool("second_echo", {"input_value": "hi"})
        assert text_of(result) == "You are terse. Question: hi"


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_without_a_key_the_session_is_refused(server: LiveServer, transport: str) -> None:
    connect, path = CONNECT[transport]
    async with server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            if transport == "streamable":
                response = await http.post(path, json=INITIALIZE)
            else:
                response = await http.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "missing_api_key"
        assert "API key" in response.json()["detail"]

        listed: list[types.Tool] = []
        # The SDK reports the refusal as its own error (wrapped in task groups).
        with pytest.raises((BaseExceptionGroup, MCPError, httpx2.HTTPStatusError)):
            async with connect(server.url + path, {}) as session:
                listed = (await session.list_tools()).tools
        assert listed == []


async def test_a_wrong_key_is_refused(server: LiveServer) -> None:
    async with server, httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/api/v1/mcp/streamable", json=INITIALIZE, headers={"x-api-key": "nope"}
        )
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid API key"


async def test_sse_client_is_told_when_the_tool_list_changes(server: LiveServer) -> None:
    seen = Notifications()
    async with server, sse(server.url + "/api/v1/mcp/sse", {"x-api-key": KEY}, seen) as session:
        await session.list_tools()
        await save_flow(
            server,
            prompt_echo(
                id="5c1d2e3f-0000-4000-8000-000000000003", name="Third", endpoint_name="third"
            ),
        )
        async with asyncio.timeout(10):
            await seen.tools_changed.wait()
        names = [t.name for t in (await session.list_tools()).tools]
        assert names == ["prompt-echo", "third"]


async def test_a_disabled_flow_disappears_and_cannot_be_called(server: LiveServer) -> None:
    async with server, streamable(server.url + "/api/v1/mcp/streamable", {"x-api-key": KEY}) as s:
        await save_flow(server, prompt_echo(mcp_enabled=False))
        assert (await s.list_tools()).tools == []
        with pytest.raises(Exception, match="Unknown tool: prompt-echo"):
            await s.call_tool("prompt-echo", {"input_value": "x"})


async def test_bad_arguments_come_back_as_a_tool_error(server: LiveServer) -> None:
    async with server, streamable(server.url + "/api/v1/mcp/streamable", {"x-api-key": KEY}) as s:
        missing = await s.call_tool("prompt-echo", {})
        assert missing.is_error
        assert "input_value" in text_of(missing)
        unknown = await s.call_tool("prompt-echo", {"input_value": "x", "temperature": 1})
        assert unknown.is_error
        assert "temperature" in text_of(unknown)


async def test_session_id_keeps_the_conversation(server: LiveServer) -> None:
    async with server, streamable(server.url + "/api/v1/mcp/streamable", {"x-api-key": KEY}) as s:
        for text in ("one", "two"):
            await s.call_tool("prompt-echo", {"input_value": text, "session_id": "chat-1"})
        await s.call_tool("prompt-echo", {"input_value": "elsewhere"})
        store = services(server).messages
        history = await store.history(PROMPT_ECHO, "chat-1", limit=10, ttl=60)
    assert [m.text for m in history if m.sender == "User"] == ["one", "two"]


async def test_declared_inputs_become_arguments_that_tweak_the_flow(
    server: LiveServer,
) -> None:
    declared = prompt_echo()
    # Declared inside the graph (``data``), which is what the flow store keeps.
    declared["data"]["mcp_inputs"] = [
        {"node": "Prompt-t2oaK", "field": "template", "description": "The prompt"}
    ]
    async with server, streamable(server.url + "/api/v1/mcp/streamable", {"x-api-key": KEY}) as s:
        await save_flow(server, declared)
        tool = (await s.list_tools()).tools[0]
        template = tool.input_schema["properties"]["template"]
        assert template["type"] == "string"
        assert template["description"] == "The prompt"
        result = await s.call_tool(
            "prompt-echo", {"input_value": "x", "template": "Tweaked: {question}"}
        )
        assert text_of(result) == "Tweaked: x"


async def test_project_endpoint_lists_only_that_projects_flows(server: LiveServer) -> None:
    async with server:
        project = await services(server).catalog.create_project("Team")
        in_project = prompt_echo(
            id="9a9e0000-0000-4000-8000-000000000004",
            name="Project Echo",
            endpoint_name="project-echo",
            folder_id=project.id,
        )
        url = f"{server.url}/api/v1/mcp/project/{project.id}"
        await save_flow(server, in_project)
        async with streamable(f"{url}/streamable", {"x-api-key": KEY}) as session:
            assert [t.name for t in (await session.list_tools()).tools] == ["project-echo"]
        async with sse(f"{url}/sse", {"x-api-key": KEY}) as session:
            assert [t.name for t in (await session.list_tools()).tools] == ["project-echo"]
            result = await session.call_tool("project-echo", {"input_value": "p"})
            assert text_of(result) == "You are terse. Question: p"


class ParseJson(Component):
    """Turns its text input into Data, as a JSON-parsing component would."""

    type_name = "TestParseJson"
    display_name = "Parse JSON"
    inputs = (Input("input_value", "any", ""),)
    outputs = (Output("data", ("Data",)),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"data": Data(data=json.loads(to_text(params.get("input_value"))))}


class DataOutput(ParseJson):
    type_name = "TestDataOutput"
    role = "output"


def data_flows() -> list[dict[str, Any]]:
    chat_in = node("ChatInput-1", "ChatInput")
    via_chat = flow(
        "6b3c0e1a-0000-4000-8000-0000000000d1",
        [chat_in, node("Parse-1", "TestParseJson"), node("ChatOutput-1", "ChatOutput")],
        [
            edge("ChatInput-1", "message", "Parse-1", "input_value"),
            edge("Parse-1", "data", "ChatOutput-1", "input_value"),
        ],
        mcp_enabled=True,
        endpoint_name="json-chat",
    )
    direct = flow(
        "6b3c0e1a-0000-4000-8000-0000000000d2",
        [chat_in, node("DataOutput-1", "TestDataOutput")],
        [edge("ChatInput-1", "message", "DataOutput-1", "input_value")],
        mcp_enabled=True,
        endpoint_name="json-data",
    )
    return [via_chat, direct]


@pytest.mark.parametrize("tool", ["json-chat", "json-data"])
async def test_data_output_comes_back_as_structured_content(
    live_server: Callable[..., LiveServer], mcp_flows: Path, tool: str
) -> None:
    registry = build_registry((*BUILTIN, ParseJson, DataOutput), plugins=False)
    server = live_server(registry, auth="on", api_key=KEY)
    async with server, streamable(server.url + "/api/v1/mcp/streamable", {"x-api-key": KEY}) as s:
        for document in data_flows():
            await save_flow(server, document)
        result = await s.call_tool(tool, {"input_value": '{"answer": 42, "tags": ["a"]}'})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"answer": 42, "tags": ["a"]}
    assert '"answer": 42' in text_of(result)


async def test_stateful_http_client_is_told_when_the_tool_list_changes(
    live_server: Callable[..., LiveServer], mcp_flows: Path
) -> None:
    server = live_server(auth="on", api_key=KEY, mcp_watch_interval=0.05, mcp_stateless=False)
    seen = Notifications()
    url = server.url + "/api/v1/mcp/streamable"
    async with server, streamable(url, {"x-api-key": KEY}, seen) as session:
        assert session.server_capabilities is not None
        tools = session.server_capabilities.tools
        assert tools is not None
        assert tools.list_changed
        await session.list_tools()
        await save_flow(server, prompt_echo(mcp_enabled=False))
        async with asyncio.timeout(10):
            await seen.tools_changed.wait()
        assert (await session.list_tools()).tools == []


async def test_a_session_cannot_be_used_with_another_key(
    live_server: Callable[..., LiveServer], mcp_flows: Path
) -> None:
    server = live_server(auth="on", api_key=KEY, mcp_stateless=False)
    async with server:
        _, other_key = await services(server).access.create_key(name="other", scopes=["execute"])
        async with httpx.AsyncClient(base_url=server.url) as http:
            opened = await http.post(
                "/api/v1/mcp/streamable",
                json=INITIALIZE,
                headers={"x-api-key": KEY, "accept": "application/json, text/event-stream"},
            )
            session_id = opened.headers["mcp-session-id"]
            session_headers = {
                "mcp-session-id": session_id,
                "mcp-protocol-version": "2025-06-18",
                "accept": "application/json, text/event-stream",
            }
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            owner = await http.post(
                "/api/v1/mcp/streamable",
                json=initialized,
                headers={**session_headers, "x-api-key": KEY},
            )
            hijack = await http.post(
                "/api/v1/mcp/streamable",
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                headers={**session_headers, "x-api-key": other_key},
            )
    assert owner.status_code == 202
    assert hijack.status_code == 404


async def test_a_failing_flow_answers_a_tool_error_naming_the_component(
    live_server: Callable[..., LiveServer], mcp_flows: Path
) -> None:
    boom = flow(
        "6b3c0e1a-0000-4000-8000-0000000000e1",
        [node("ChatInput-1", "ChatInput"), node("Boom-1", "TestBoom")],
        [edge("ChatInput-1", "message", "Boom-1", "input_value")],
        mcp_enabled=True,
        endpoint_name="boom",
    )
    server = live_server(make_registry(), auth="on", api_key=KEY)
    async with server, streamable(server.url + "/api/v1/mcp/streamable", {"x-api-key": KEY}) as s:
        await save_flow(server, boom)
        result = await s.call_tool("boom", {"input_value": "x"})
        assert result.is_error
        assert "the component blew up" in text_of(result)
        # The server is still fine afterwards.
        ok = await s.call_tool("prompt-echo", {"input_value": "after"})
        assert text_of(ok) == "You are terse. Question: after"


async def test_sse_announces_the_message_url_under_the_proxy_root_path(
    server: LiveServer,
) -> None:
    server.server.config.root_path = "/lf"  # as `flowserve serve` does behind a proxy
    async with (
        server,
        httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}) as http,
        http.stream("GET", "/api/v1/mcp/sse") as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()
        event = await anext(lines)
        data = await anext(lines)
    assert event.strip() == "event: endpoint"
    assert data.startswith("data: /lf/api/v1/mcp/?session_id=")


async def test_a_key_restricted_to_some_flows_sees_only_those_tools(server: LiveServer) -> None:
    async with server:
        await save_flow(server, prompt_echo(id=SECOND, name="Second", endpoint_name="second"))
        _, key = await services(server).access.create_key(
            name="echo only", scopes=["execute"], flows=["prompt-echo"]
        )
        url = server.url + "/api/v1/mcp/streamable"
        async with streamable(url, {"x-api-key": key}) as session:
            assert [t.name for t in (await session.list_tools()).tools] == ["prompt-echo"]
            with pytest.raises(MCPError, match="Unknown tool: second"):
                await session.call_tool("second", {"input_value": "x"})


async def test_a_key_without_the_execute_scope_is_forbidden(server: LiveServer) -> None:
    async with server:
        _, key = await services(server).access.create_key(name="reader", scopes=["read"])
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.post(
                "/api/v1/mcp/streamable", json=INITIALIZE, headers={"x-api-key": key}
            )
    assert response.status_code == 403
    assert "execute" in response.json()["detail"]
