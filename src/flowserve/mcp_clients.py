"""What an MCP client needs to reach flowserve: URLs, and config snippets to paste.

``flowserve mcp-config`` prints one of two ``mcpServers`` documents:

- ``proxy`` (default): a stdio bridge, for clients that only start local
  processes (Claude Desktop): ``uvx mcp-proxy`` connecting to our Streamable
  HTTP (or SSE) URL with the key header.
- ``http``: the Streamable HTTP URL and headers, for clients that speak HTTP
  themselves (Cursor, Claude Code, VS Code).

The base URL is ``FLOWSERVE_PUBLIC_URL`` when set (the address clients see
behind a reverse proxy), else the local host, port and root path.
"""

from __future__ import annotations

from typing import Any, Literal

from flowserve.settings import Settings

MCP_PREFIX = "/api/v1/mcp"
KEY_PLACEHOLDER = "<YOUR_API_KEY>"

Transport = Literal["streamable", "sse"]
Mode = Literal["proxy", "http"]


def base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{settings.root_path.rstrip('/')}"


def endpoint_url(
    settings: Settings, transport: Transport = "streamable", project_id: str | None = None
) -> str:
    path = MCP_PREFIX if project_id is None else f"{MCP_PREFIX}/project/{project_id}"
    return f"{base_url(settings)}{path}/{transport}"


def client_config(
    settings: Settings,
    *,
    mode: Mode = "proxy",
    transport: Transport = "streamable",
    key: str | None = None,
    project_id: str | None = None,
    name: str = "flowserve",
) -> dict[str, Any]:
    """An ``mcpServers`` document; the key header is left out when auth is off."""
    url = endpoint_url(settings, "streamable" if mode == "http" else transport, project_id)
    headers = {} if settings.auth == "off" else {"x-api-key": key or KEY_PLACEHOLDER}
    if mode == "http":
        server: dict[str, Any] = {"type": "http", "url": url}
        if headers:
            server["headers"] = headers
    else:
        args = ["mcp-proxy"]
        if transport == "streamable":
            args += ["--transport", "streamablehttp"]
        for header, value in headers.items():
            args += ["--headers", header, value]
        server = {"command": "uvx", "args": [*args, url]}
    return {"mcpServers": {name: server}}
