"""The in-process job queue and subscriptions: the embedded default.

Same contract as the Redis backend, but state lives in this process only: jobs
queued or running when it stops are lost, and other instances or
``flowserve worker`` processes cannot see them. Use Redis for anything that
must survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from flowserve.store.jobs import FINAL, DeliveryAttempt, Job, Lease, Subscription

DELIVERY_LOG_LENGTH = 200


class MemoryJobQueue:
    def __init__(self, *, result_ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._ttl = result_ttl
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._expires: dict[str, float] = {}
        self._idempotency: dict[str, tuple[str, float]] = {}
        # (when, is_key, job id or idempotency key): what to forget when, oldest first,
        # so finished jobs and their keys leave memory even when nobody asks for them.
        self._expiry: list[tuple[float, bool, str]] = []
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._delayed: list[tuple[float, str]] = []
        self._dead: deque[str] = deque(maxlen=1000)
        self._entries = itertools.count(1)
        self._wakeup = asyncio.Event()  # set when a job becomes ready or is scheduled

    def _sweep(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            _, is_key, name = heapq.heappop(self._expiry)
            if is_key:
                held = self._idempotency.get(name)
                if held is not None and held[1] <= now:
                    del self._idempotency[name]
            elif self._expires.get(name, now + 1) <= now:
                self._jobs.pop(name, None)
                self._expires.pop(name, None)

    def _live(self, job_id: str) -> Job | None:
        expires = self._expires.get(job_id)
        if expires is not None and expires <= self._clock():
            self._jobs.pop(job_id, None)
            self._expires.pop(job_id, None)
        return self._jobs.get(job_id)

    def _finish(self, job: Job, status: str, **changes: Any) -> None:
        job.status = status  # type: ignore[assignment]
        job.finished_at = self._clock()
        for name, value in changes.items():
            setattr(job, name, value)
        self._expires[job.id] = job.finished_at + self._ttl
        heapq.heappush(self._expiry, (self._expires[job.id], False, job.id))

    async def enqueue(self, job: Job, *, idempotency_key: str | None = None) -> tuple[Job, bool]:
        now = self._clock()
        self._sweep(now)
        if idempotency_key is not None:
            held = self._idempotency.get(idempotency_key)
            if held is not None and held[1] > now and (first := self._live(held[0])):
                return first, False
            self._idempotency[idempotency_key] = (job.id, now + self._ttl)
            heapq.heappush(self._expiry, (now + self._ttl, True, idempotency_key))
        job.created_at = job.created_at or now
        self._jobs[job.id] = job
        self._ready.put_nowait(job.id)
        self._wakeup.set()
        return job, True

    async def get(self, job_id: str) -> Job | None:
        return self._live(job_id)

    def _promote(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, job_id = heapq.heappop(self._delayed)
            self._ready.put_nowait(job_id)

    async def claim(self, consumer: str, count: int, block: float) -> list[Lease]:
        deadline = time.monotonic() + block
        self._promote()
        while self._ready.empty():
            wait = deadline - time.monotonic()
            if self._delayed:
                wait = min(wait, self._delayed[0][0] - self._clock())
            if wait > 0:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
            self._promote()
            if time.monotonic() >= deadline:
                break
        leases: list[Lease] = []
        while len(leases) < count and not self._ready.empty():
            leases.append(Lease(str(next(self._entries)), self._ready.get_nowait()))
        return leases

    def _schedule(self, job_id: str, due: float) -> None:
        heapq.heappush(self._delayed, (due, job_id))
        self._wakeup.set()

    async def start(self, lease: Lease, consumer: str) -> Job | None:
        job = self._live(lease.job_id)
        if job is None or job.status in FINAL:
            return None
        if job.cancel_requested:
            self._finish(job, "cancelled")
            return None
        job.status = "running"
        job.attempts += 1
        job.started_at = self._clock()
        return job

    async def heartbeat(self, consumer: str, leases: list[Lease]) -> set[str]:
        return {
            lease.job_id
            for lease in leases
            if (job := self._live(lease.job_id)) is not None and job.cancel_requested
        }

    async def complete(self, lease: Lease, result: Any) -> bool:
        job = self._live(lease.job_id)
        if job is None or job.status in FINAL:
            return False
        self._finish(job, "succeeded", result=result, error=None)
        return True

    async def fail(self, lease: Lease, error: str, retry_in: float | None) -> Job | None:
        job = self._live(lease.job_id)
        if job is None or job.status in FINAL:
            return job
        if job.cancel_requested:
            self._finish(job, "cancelled", error=error)
            return job
        if retry_in is not None:
            job.status = "queued"
            job.error = error
            self._schedule(job.id, self._clock() + retry_in)
            return job
        self._finish(job, "failed", error=error)
        self._dead.append(job.id)
        return job

    async def defer(self, lease: Lease, delay: float) -> None:
        job = self._live(lease.job_id)
        if job is None or job.status in FINAL:
            return
        job.status = "queued"
        job.attempts -= 1
        self._schedule(job.id, self._clock() + delay)

    async def finish_cancelled(self, lease: Lease) -> None:
        job = self._live(lease.job_id)
        if job is not None and job.status not in FINAL:
            self._finish(job, "cancelled")

    async def cancel(self, job_id: str) -> Job | None:
        job = self._live(job_id)
        if job is None or job.status in FINAL:
            return job
        job.cancel_requested = True
        if job.status == "queued":
            self._finish(job, "cancelled")
        return job

    async def dead_letters(self, limit: int = 100) -> list[Job]:
        jobs = [self._live(job_id) for job_id in reversed(self._dead)]
        return [job for job in jobs if job is not None][:limit]

    async def retire(self, consumer: str) -> None:
        return None

    async def ping(self) -> None:
        return None


class MemorySubscriptionStore:
    def __init__(self) -> None:
        self._subs: dict[str, dict[str, Subscription]] = {}
        self._log: dict[str, deque[DeliveryAttempt]] = {}

    async def put(self, subscription: Subscription) -> None:
        self._subs.setdefault(subscription.flow_id, {})[subscription.id] = subscription

    async def get(self, flow_id: str, subscription_id: str) -> Subscription | None:
        return self._subs.get(flow_id, {}).get(subscription_id)

    async def of_flow(self, flow_id: str) -> list[Subscription]:
        return sorted(self._subs.get(flow_id, {}).values(), key=lambda s: (s.created_at, s.id))

    async def delete(self, flow_id: str, subscription_id: str) -> bool:
        self._log.pop(subscription_id, None)
        return self._subs.get(flow_id, {}).pop(subscription_id, None) is not None

    async def delete_flow(self, flow_id: str) -> int:
        subs = self._subs.pop(flow_id, {})
        for subscription_id in subs:
            self._log.pop(subscription_id, None)
        return len(subs)

    async def record(self, subscription_id: str, attempt: DeliveryAttempt) -> None:
        log = self._log.setdefault(subscription_id, deque(maxlen=DELIVERY_LOG_LENGTH))
        log.appendleft(attempt)

    async def deliveries(self, subscription_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        return list(self._log.get(subscription_id, ()))[:limit]

    async def ping(self) -> None:
        return None
