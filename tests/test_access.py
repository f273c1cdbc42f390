"""The access service without HTTP: what transports outside the route guard rely on."""

from __future__ import annotations

import pytest

from flowserve.access import Access
from flowserve.errors import InsufficientScope, MissingApiKey
from flowserve.settings import Settings
from flowserve.store.memory_access import MemoryKeyStore, MemoryRateLimiter


async def test_transports_outside_the_guard_authenticate_from_headers() -> None:
    # MCP sessions authenticate with the request's headers rather than the route guard.
    settings = Settings(auth="on", api_key="fs_" + "b" * 43)
    access = Access(settings, MemoryKeyStore(), MemoryRateLimiter())
    record, key = await access.create_key(name="mcp", scopes=["read"])
    by_header = await access.authenticate_headers({"x-api-key": key})
    by_bearer = await access.authenticate_headers({"authorization": f"Bearer {key}"})
    assert by_header.id == by_bearer.id == record.id
    with pytest.raises(InsufficientScope):
        by_header.require("execute")
    with pytest.raises(MissingApiKey):
        await access.authenticate_headers({})
    off = Access(settings.replace(auth="off"), MemoryKeyStore(), MemoryRateLimiter())
    assert (await off.authenticate_headers({})).allows("admin")
    await access.aclose()
