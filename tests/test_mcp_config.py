"""``flowserve mcp-config`` as a user runs it, and the snippet it prints actually connects."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.api.test_mcp import KEY, prompt_echo
from tests.conftest import LiveServer

FLOWSERVE = [sys.executable, "-m", "flowserve.cli"]


async def mcp_config(*args: str, **env: str) -> tuple[dict[str, Any], str]:
    process = await asyncio.create_subprocess_exec(
        *FLOWSERVE,
        "mcp-config",
        *args,
        env={**os.environ, "FLOWSERVE_API_KEY": "", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    document: dict[str, Any] = json.loads(out)
    return document, err.decode()


async def test_http_snippet_connects_and_lists_the_flows(
    live_server: Callable[..., LiveServer], flows_dir: Path
) -> None:
    (flows_dir / "prompt-echo.json").write_text(json.dumps(prompt_echo()))
    async with live_server(auth="on", api_key=KEY) as server:
        document, _ = await mcp_config(
            "--mode", "http", "--key", KEY, FLOWSERVE_PUBLIC_URL=server.url + "/"
        )
        entry = document["mcpServers"]["flowserve"]
        assert entry["url"] == f"{server.url}/api/v1/mcp/streamable"
        async with (
            create_mcp_http_client(headers=entry["headers"]) as http,
            streamable_http_client(entry["url"], http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = (await session.list_tools()).tools
    assert [t.name for t in tools] == ["prompt-echo"]


async def test_proxy_snippet_bridges_stdio_to_the_public_url() -> None:
    document, note = await mcp_config(FLOWSERVE_PUBLIC_URL="https://flows.example.com/lf")
    entry = document["mcpServers"]["flowserve"]
    assert entry["command"] == "uvx"
    assert entry["args"] == [
        "mcp-proxy",
        "--transport",
        "streamablehttp",
        "--headers",
        "x-api-key",
        "<YOUR_API_KEY>",
        "https://flows.example.com/lf/api/v1/mcp/streamable",
    ]
    assert "--key" in note


async def test_sse_proxy_for_one_project_without_auth_has_no_key() -> None:
    document, note = await mcp_config(
        "--transport", "sse", "--project", "p-1", "--name", "team", FLOWSERVE_AUTH="off"
    )
    entry = document["mcpServers"]["team"]
    assert entry["args"] == ["mcp-proxy", "http://127.0.0.1:7860/api/v1/mcp/project/p-1/sse"]
    assert note == ""
