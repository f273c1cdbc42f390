"""An app with auth on, driven over HTTP with the bootstrap admin key at hand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from flowserve.access import generate_key, hash_key
from flowserve.app import create_app
from flowserve.settings import Settings
from flowserve.store.base import KeyRecord

BOOTSTRAP_KEY = "fs_bootstrap_" + "k" * 40
HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
ADMIN = {"x-api-key": BOOTSTRAP_KEY}


def auth_settings(flows_dir: Path, **changes: Any) -> Settings:
    """Auth on, the bootstrap key set, keys in a SQLite file beside the test's flows."""
    return Settings(
        flows_dir=str(flows_dir),
        auth="on",
        api_key=BOOTSTRAP_KEY,
        log_level="warning",
        sqlite_path=str(flows_dir.parent / "flowserve.db"),
    ).replace(**changes)


class AuthedApp:
    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    async def create_key(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/api_key/", json=body, headers={"x-api-key": BOOTSTRAP_KEY}
        )
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()
        return created

    async def store_key(self, **fields: Any) -> str:
        """Put a key straight into the store (for states the API refuses to create)."""
        key = generate_key()
        record = KeyRecord(
            id=str(uuid.uuid4()),
            name="stored",
            prefix=key[:8],
            key_hash=hash_key(key),
            scopes=("admin",),
            created_at=datetime.now(UTC) - timedelta(days=2),
            **fields,
        )
        await self.app.state.services.access.keys.create(record)
        return key


@asynccontextmanager
async def authed_app(settings: Settings) -> AsyncIterator[AuthedApp]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowserve") as client:
            yield AuthedApp(app, client)
