"""Startup that waits for dependencies: retries with backoff, then gives up with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from flowserve.errors import Unavailable
from flowserve.lifecycle import open_when_ready


class Dependency:
    """Comes up after ``failures`` attempts; records how often it was opened and closed."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.closed = 0

    def open(self) -> AbstractAsyncContextManager[str]:
        @asynccontextmanager
        async def opened() -> AsyncIterator[str]:
            self.attempts += 1
            try:
                if self.attempts <= self.failures:
                    raise Unavailable(f"connection refused (attempt {self.attempts})")
                yield "services"
            finally:
                self.closed += 1

        return opened()


async def test_startup_retries_until_dependencies_answer() -> None:
    dependency = Dependency(failures=3)
    async with open_when_ready(
        dependency.open, give_up_after=30, first_delay=0.01, max_delay=0.02
    ) as services:
        assert services == "services"
        assert dependency.attempts == 4
    # Every failed attempt was cleaned up, and so was the successful one.
    assert dependency.closed == 4


async def test_startup_also_waits_for_readiness() -> None:
    states = iter(["down", "down", "ok"])

    async def ready(value: str) -> None:
        if next(states) != "ok":
            raise Unavailable("flows: error: no database yet")

    dependency = Dependency(failures=0)
    async with open_when_ready(
        dependency.open, ready=ready, give_up_after=30, first_delay=0.01
    ) as services:
        assert services == "services"
    assert dependency.attempts == 3


async def test_startup_gives_up_with_the_last_reason() -> None:
    dependency = Dependency(failures=10_000)
    with pytest.raises(Unavailable) as caught:
        async with open_when_ready(
            dependency.open, give_up_after=0.2, first_delay=0.01, max_delay=0.05, what="stores"
        ):
            pytest.fail("should not start")
    assert caught.value.detail.startswith("stores not reachable after")
    assert "connection refused" in caught.value.detail
    assert dependency.attempts > 1


async def test_errors_that_are_not_about_reachability_are_not_retried() -> None:
    @asynccontextmanager
    async def broken() -> AsyncIterator[str]:
        raise ValueError("bad configuration")
        yield "never"

    with pytest.raises(ValueError, match="bad configuration"):
        async with open_when_ready(broken, give_up_after=30):
            pass
