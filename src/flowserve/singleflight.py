"""At most one load per key at a time, however many callers want it at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Callers that ask for a key while its load runs share that load's result (or error).

    The load runs in a task of its own, so a caller that goes away (a client hanging
    up) does not cancel it for the others: each waits through ``asyncio.shield``.
    With thousands of runs in flight, a cache entry expiring would otherwise send
    every one of them to the store at the same moment.
    """

    def __init__(self) -> None:
        self._loading: dict[K, asyncio.Future[V]] = {}

    def busy(self, key: K) -> bool:
        """Whether a load of ``key`` is under way."""
        return key in self._loading

    async def run(self, key: K, load: Callable[[], Coroutine[Any, Any, V]]) -> V:
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.ensure_future(load())
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)

    def _done(self, key: K, done: asyncio.Future[V]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so a load nobody awaited any more is quiet
