"""A started server holds no MCP SDK (nor pydantic) until the first MCP request.

The SDK is most of a server's memory and import time and most deployments never
speak MCP; a stray import would quietly put the RSS and cold-start targets out of
reach. Checked in a fresh interpreter, since this test process imports everything.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import httpx
    from flowserve.app import create_app
    from flowserve.settings import Settings

    async def main() -> None:
        app = create_app(Settings(flows_dir=sys.argv[1], auth="off", job_worker=False))
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/api/v1/version")).status_code == 200
                print("before", "mcp" in sys.modules, "pydantic" in sys.modules)
                answer = await client.post(
                    "/api/v1/mcp/streamable",
                    json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                    headers={"accept": "application/json, text/event-stream"},
                )
                print("after", "mcp" in sys.modules, answer.status_code)

    asyncio.run(main())
    """
)


def test_the_mcp_sdk_loads_with_the_first_mcp_request(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "before False False" in lines
    assert "after True 200" in lines
