"""``flowserve serve`` freezes what startup allocated, so full collections skip it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flowserve.app import GC_YOUNG_THRESHOLD, create_app
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
async def test_a_serving_app_freezes_its_startup_heap(settings: Settings) -> None:
    gc.unfreeze()
    async for client in _serve_in_lifespan(create_app(settings, serving=True)):
        assert gc.get_freeze_count() > 10_000  # modules, spec, pools, compiled flows
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert (await client.get("/health")).status_code == 200


@pytest.mark.usefixtures("restore_gc")
async def test_an_embedded_app_leaves_the_host_process_gc_alone(settings: Settings) -> None:
    gc.unfreeze()
    threshold = gc.get_threshold()
    async for client in _serve_in_lifespan(create_app(settings)):
        assert (await client.get("/health")).status_code == 200
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == threshold
