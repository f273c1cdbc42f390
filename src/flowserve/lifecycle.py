"""Startup that waits for its dependencies: retry with capped, jittered backoff.

In a fresh deployment the database and Redis often come up after the app
(compose, Kubernetes). Instead of crash-looping, an instance retries opening
its services until they answer or ``startup_timeout`` passes, logging each
wait; then it fails with the last reason, and the orchestrator restarts it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TypeVar

import structlog

from flowserve.errors import Unavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")

# What "not up yet" looks like: stores translate driver errors to Unavailable;
# a refused or reset connection may still surface as OSError.
RETRYABLE = (Unavailable, OSError)


@asynccontextmanager
async def open_when_ready(
    opener: Callable[[], AbstractAsyncContextManager[T]],
    *,
    ready: Callable[[T], object] | None = None,
    give_up_after: float,
    what: str = "services",
    first_delay: float = 0.1,
    max_delay: float = 5.0,
) -> AsyncIterator[T]:
    """Enter ``opener()`` (then await ``ready(value)``), retrying for ``give_up_after`` s.

    ``ready`` raises ``Unavailable`` while a dependency is not serving yet.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        stack = AsyncExitStack()
        try:
            value = await stack.enter_async_context(opener())
            if ready is not None:
                check = ready(value)
                if asyncio.iscoroutine(check):
                    await check
        except RETRYABLE as exc:
            await stack.aclose()
            detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            pause = delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
            if loop.time() + pause > deadline:
                raise Unavailable(
                    f"{what} not reachable after {attempt} attempts "
                    f"in {give_up_after:g} s: {detail}"
                ) from exc
            log.warning(
                "waiting_for_dependencies",
                what=what,
                attempt=attempt,
                detail=detail,
                retry_in=round(pause, 3),
            )
            await asyncio.sleep(pause)
            delay = min(delay * 2, max_delay)
            continue
        if attempt > 1:
            log.info("dependencies_ready", what=what, attempts=attempt)
        async with stack:
            yield value
        return
