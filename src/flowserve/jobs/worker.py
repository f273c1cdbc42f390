"""The worker: claims jobs from a ``JobQueue`` and runs each with its kind's handler.

One worker runs up to ``concurrency`` jobs at once. While they run it renews
their leases every third of the visibility timeout (so a live worker's jobs
are never taken over) and learns which of them were cancelled, wherever the
``DELETE`` arrived; those are cancelled cooperatively (the asyncio task is
cancelled and the job marked ``cancelled``). A handler that raises is retried
with exponential backoff and jitter until the job's attempts are used up,
except for errors that cannot succeed on a retry (4xx ``FlowserveError``,
``Permanent``). On shutdown running jobs get a grace period, then are put back
in the queue for another worker. A finished job whose outcome cannot be written
(the store is down) keeps trying until it can, rather than be run again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from flowserve.errors import FlowserveError, Unavailable
from flowserve.store.jobs import Job, JobQueue, Lease

log = structlog.get_logger(__name__)

Handler = Callable[[Job], Awaitable[Any]]

BUSY_POLL = 0.1  # seconds a busy worker waits for new jobs before looking again
# Seconds between tries to record a finished job's outcome while the store is down.
SETTLE_RETRY_MIN = 0.1
SETTLE_RETRY_MAX = 2.0

T = TypeVar("T")


class Defer(Exception):
    """Raised by a handler: run this job again after ``delay`` s, no attempt counted."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"deferred for {delay:g} s")
        self.delay = delay


class Permanent(Exception):
    """Raised by a handler: this job cannot succeed, do not retry it."""


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (1-based): full-jitter exponential."""
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def describe(exc: BaseException) -> str:
    if isinstance(exc, FlowserveError):
        return exc.detail
    if isinstance(exc, Permanent):
        return str(exc)  # a handler's own words, already saying what went wrong
    return f"{type(exc).__name__}: {exc}"


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, Permanent) or (isinstance(exc, FlowserveError) and exc.status < 500)


@dataclass
class Worker:
    queue: JobQueue
    handlers: Mapping[str, Handler]
    concurrency: int = 16
    visibility_timeout: float = 60.0
    backoff: Backoff = field(default_factory=Backoff)
    consumer: str = field(default_factory=consumer_name)
    poll: float = 1.0
    grace: float = 10.0
    # An in-process queue hands nothing out until claim() returns, so stop() may abandon
    # a waiting claim at once; a Redis claim (XREADGROUP) may already have delivered
    # entries, so the worker lets it finish (at most ``poll`` seconds).
    interruptible_claims: bool = False
    _active: dict[Lease, asyncio.Task[None]] = field(default_factory=dict)
    _cancelled: set[str] = field(default_factory=set)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Claim and run jobs until ``stop()``; then drain (see the module docstring)."""
        log.info("worker_started", consumer=self.consumer, concurrency=self.concurrency)
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            try:
                await self.queue.retire(self.consumer)
            except FlowserveError as exc:
                log.warning("worker_retire_failed", detail=exc.detail)
            log.info("worker_stopped", consumer=self.consumer)

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self._active)
            if free <= 0:
                await asyncio.wait(
                    [*self._active.values()], timeout=self.poll, return_when="FIRST_COMPLETED"
                )
                continue
            # Running jobs may schedule retries soon: look again sooner while there are some.
            block = min(self.poll, BUSY_POLL) if self._active else self.poll
            try:
                leases = await self._claim(free, block)
            except FlowserveError as exc:
                log.warning("job_claim_failed", detail=exc.detail)
                await self._pause(1.0)
                continue
            for lease in leases:
                if lease in self._active:
                    # Our own job, idle past the visibility timeout while the store was
                    # down (no heartbeats), reclaimed by ourselves: it is still running here.
                    continue
                task = asyncio.create_task(self._process(lease))
                self._active[lease] = task
                task.add_done_callback(functools.partial(self._forget, lease))

    async def _claim(self, count: int, block: float) -> list[Lease]:
        if not self.interruptible_claims:
            return await self.queue.claim(self.consumer, count, block)
        claim = asyncio.ensure_future(self.queue.claim(self.consumer, count, block))
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({claim, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not claim.done():
                claim.cancel()
                await asyncio.gather(claim, return_exceptions=True)
        return [] if claim.cancelled() else claim.result()

    def _forget(self, lease: Lease, _: asyncio.Task[None]) -> None:
        self._active.pop(lease, None)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _drain(self) -> None:
        if not self._active:
            return
        _, pending = await asyncio.wait([*self._active.values()], timeout=self.grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _heartbeat(self) -> None:
        interval = self.visibility_timeout / 3
        while True:
            await asyncio.sleep(interval)
            leases = list(self._active)
            try:
                cancelled = await self.queue.heartbeat(self.consumer, leases)
            except FlowserveError as exc:
                log.warning("job_heartbeat_failed", detail=exc.detail)
                continue
            for lease in leases:
                task = self._active.get(lease)
                if lease.job_id in cancelled and task is not None and not task.done():
                    self._cancelled.add(lease.job_id)
                    task.cancel()

    async def _process(self, lease: Lease) -> None:
        try:
            job = await self.queue.start(lease, self.consumer)
        except FlowserveError as exc:
            log.warning("job_start_failed", job_id=lease.job_id, detail=exc.detail)
            return  # the entry stays pending and is claimed again later
        if job is None:
            return
        handler = self.handlers.get(job.kind)
        if handler is None:
            await self.queue.fail(lease, f"no handler for jobs of kind '{job.kind}'", None)
            return
        try:
            result = await handler(job)
        except asyncio.CancelledError:
            if lease.job_id in self._cancelled:
                self._cancelled.discard(lease.job_id)
                await self._release(lease, cancelled=True)
                return
            await self._release(lease, cancelled=False)
            raise
        except Defer as deferred:
            delay = deferred.delay
            await self._settle(lease, lambda: self.queue.defer(lease, delay))
            return
        except Exception as exc:
            await self._failed(lease, job, exc)
            return
        if not await self._settle(lease, lambda: self.queue.complete(lease, result)):
            log.info("job_already_final", job_id=job.id, kind=job.kind)

    async def _settle(self, lease: Lease, write: Callable[[], Awaitable[T]]) -> T:
        """Write a job's outcome, retrying while the queue's store is unavailable.

        The run is done: giving up here would leave the job pending, to be run again
        once its lease expires. Retrying keeps it one run when the store comes back;
        the heartbeat renews the lease meanwhile, and shutdown cancels the wait.
        """
        delay = SETTLE_RETRY_MIN
        while True:
            try:
                return await write()
            except Unavailable as exc:
                log.warning("job_outcome_write_failed", job_id=lease.job_id, detail=exc.detail)
                await asyncio.sleep(delay)
                delay = min(delay * 2, SETTLE_RETRY_MAX)

    async def _release(self, lease: Lease, *, cancelled: bool) -> None:
        try:
            if cancelled:
                await self.queue.finish_cancelled(lease)
                log.info("job_cancelled", job_id=lease.job_id)
            else:  # shutting down: hand the job to another worker now
                await self.queue.defer(lease, 0.0)
        except FlowserveError as exc:
            log.warning("job_release_failed", job_id=lease.job_id, detail=exc.detail)

    async def _failed(self, lease: Lease, job: Job, exc: Exception) -> None:
        error = describe(exc)
        retry_in = None
        if not is_permanent(exc) and job.attempts < job.max_attempts:
            retry_in = self.backoff.delay(job.attempts)
        log.warning(
            "job_failed",
            job_id=job.id,
            kind=job.kind,
            attempt=job.attempts,
            retry_in=retry_in,
            error=error,
        )
        await self._settle(lease, lambda: self.queue.fail(lease, error, retry_in))
