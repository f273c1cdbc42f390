"""Admission control: how many runs one instance executes at once.

Beyond ``max_concurrent_runs`` a run is refused at once with a 503 and a
``Retry-After`` header instead of queueing in memory: a load balancer (or the
client) retries on another replica, and the instance keeps its latency.
"""

from __future__ import annotations

from typing import Protocol

from flowserve.errors import Overloaded


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...

    def dec(self, amount: float = 1) -> None: ...


class RunSlots:
    """A counter, not a semaphore: nothing waits, so acquiring is a comparison."""

    __slots__ = ("_gauge", "_in_use", "limit", "retry_after")

    def __init__(self, limit: int, *, retry_after: int = 1, gauge: Counter | None = None) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self._in_use = 0
        # Only when worker processes share a gauge; otherwise it is read at scrape time.
        self._gauge = gauge

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> None:
        """Take a slot, or raise ``Overloaded`` (503 + Retry-After) when none is free."""
        if self._in_use >= self.limit:
            raise Overloaded(
                f"This instance is running its maximum of {self.limit} concurrent runs; "
                f"retry in {self.retry_after} s",
                headers={"Retry-After": str(self.retry_after)},
            )
        self._in_use += 1
        if self._gauge is not None:
            self._gauge.inc()

    def release(self) -> None:
        self._in_use -= 1
        if self._gauge is not None:
            self._gauge.dec()
