"""Admission control: how many runs one instance executes at once, and what the
process needs to hold them.

Beyond ``max_concurrent_runs`` a run is refused at once with a 503 and a
``Retry-After`` header instead of queueing in memory: a load balancer (or the
client) retries on another replica, and the instance keeps its latency.

Thousands of runs in flight need as many sockets: ``raise_open_files_limit``
lifts the soft ``RLIMIT_NOFILE`` to the hard limit when ``flowserve serve``
starts, and ``serving_warnings`` says what still falls short (the limit, or a
pool a run holds for its whole model call that is smaller than the runs).
"""

from __future__ import annotations

from typing import Protocol

from flowserve.errors import Overloaded
from flowserve.settings import Settings

# The most open files we ask for (Linux's default fs.nr_open).
MAX_OPEN_FILES = 1_048_576
# Descriptors per run in flight: the caller's socket, the model's, one spare (a
# component's outbound call, a file); plus a base for the stores, logs and the listener.
FILES_PER_RUN = 3
BASE_OPEN_FILES = 256


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


def open_files_needed(settings: Settings) -> int:
    return FILES_PER_RUN * settings.max_concurrent_runs + BASE_OPEN_FILES


def soft_limit_to_ask(soft: int, hard: int, cap: int = MAX_OPEN_FILES) -> int:
    """The soft limit to set: the hard limit (``-1`` is unlimited), at most ``cap``,
    never lower than the current one."""
    target = cap if hard < 0 else min(hard, cap)
    return max(soft, target)


def raise_open_files_limit() -> int:
    """Lift this process's soft ``RLIMIT_NOFILE`` towards the hard limit (inherited by
    worker processes); the soft limit now in force (``-1``: unlimited, or no such limit)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return -1
    target = soft_limit_to_ask(soft, -1 if hard == resource.RLIM_INFINITY else hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. above a macOS kernel maximum
            return soft
    return target


def serving_warnings(settings: Settings, open_files: int) -> list[tuple[str, dict[str, object]]]:
    """``(event, fields)`` to log at start: what keeps ``max_concurrent_runs`` out of reach.

    Only the pools a run holds for the whole of a call (a model's answer, a fetched
    page) are compared with the runs; Redis and PostgreSQL connections are held for a
    command, so far fewer serve as many runs.
    """
    runs = settings.max_concurrent_runs
    warnings: list[tuple[str, dict[str, object]]] = []
    needed = open_files_needed(settings)
    if 0 <= open_files < needed:
        detail = (
            f"the open files limit ({open_files}) is below the {needed} that "
            f"FLOWSERVE_MAX_CONCURRENT_RUNS={runs} may need; raise the hard limit "
            "(ulimit -Hn, LimitNOFILE= in systemd, the container runtime's nofile)"
        )
        warnings.append(
            ("open_files_limit_low", {"limit": open_files, "needed": needed, "detail": detail})
        )
    pools = (
        ("provider_pool_size", settings.provider_pool_limit),
        ("http_pool_size", settings.http_pool_limit),
    )
    for setting, size in pools:
        if size < runs:
            detail = (
                f"FLOWSERVE_{setting.upper()}={size} is below FLOWSERVE_MAX_CONCURRENT_RUNS="
                f"{runs}: runs past it wait for a connection, then fail with 503 pool_exhausted"
            )
            warnings.append(
                (
                    "pool_smaller_than_runs",
                    {"pool": setting, "size": size, "runs": runs, "detail": detail},
                )
            )
    return warnings
