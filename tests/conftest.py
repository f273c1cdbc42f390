"""Shared fixtures: settings, the app inside its lifespan, a real uvicorn server.

``client`` drives the app through httpx's ASGI transport (fast, but it buffers
whole responses); ``server`` runs the same app in uvicorn on a loopback port,
for anything that must be observed over a real socket (streaming).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from flowserve.app import create_app
from flowserve.engine import Registry
from flowserve.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
FLOWS = FIXTURES / "flows"
RESPONSES = FIXTURES / "langflow-1.13-responses"

# Flows every API test can run without an LLM.
CORE_FLOWS = ("hello-world.json", "prompt-echo.json")


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "flows"
    directory.mkdir()
    for name in CORE_FLOWS:
        shutil.copy(FLOWS / name, directory / name)
    return directory


@pytest.fixture
def settings(flows_dir: Path, tmp_path: Path) -> Settings:
    """Embedded backends (a SQLite file in the test's tmp dir, in-process messages)."""
    return Settings(
        flows_dir=str(flows_dir),
        auth="off",
        log_level="warning",
        sqlite_path=str(tmp_path / "flowserve.db"),
    )


AppFactory = Callable[..., Starlette]


async def _serve_in_lifespan(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowserve") as client:
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _serve_in_lifespan(create_app(settings)):
        yield c


class LiveServer:
    """The app in a real uvicorn server on 127.0.0.1, inside the test's event loop."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.sock.close()


@pytest.fixture
def live_server(settings: Settings) -> Callable[..., LiveServer]:
    def make(registry: Registry | None = None, **changes: Any) -> LiveServer:
        app_settings = settings.replace(**changes) if changes else settings
        return LiveServer(create_app(app_settings, registry=registry))

    return make
