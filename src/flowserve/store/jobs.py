"""Job queue and event-subscription ports: what ``jobs/`` needs from shared state.

A job is a unit of background work (a webhook run, one event delivery) with a
state that callers poll. Backends: ``store/redis_jobs.py`` (Redis Streams with a
consumer group: durable, shared by every instance and worker process) and
``store/memory_jobs.py`` (in-process: the embedded default, not durable).

Lifecycle: ``enqueue`` -> ``claim`` (a ``Lease`` on one queue entry) ->
``start`` (status running, attempts + 1) -> ``complete`` | ``fail`` (retry
later or dead-letter) | ``defer`` (put back without counting an attempt) |
``finish_cancelled``. Delivery is at-least-once: a lease whose worker stops
renewing it (``heartbeat``) is claimed again by another worker after the
visibility timeout. A job's final state is written once; later writes are no-ops.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class Job(msgspec.Struct, kw_only=True):
    id: str
    kind: str
    payload: dict[str, Any]
    status: JobStatus = "queued"
    attempts: int = 0
    max_attempts: int = 5
    flow_id: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: str | None = None
    cancel_requested: bool = False


class Lease(msgspec.Struct, frozen=True):
    """One claimed queue entry: the job it carries and the entry to acknowledge."""

    entry_id: str
    job_id: str


class JobQueue(Protocol):
    async def enqueue(self, job: Job, *, idempotency_key: str | None = None) -> tuple[Job, bool]:
        """Store and queue ``job``; with a key seen before, the first job and False."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def claim(self, consumer: str, count: int, block: float) -> list[Lease]:
        """Up to ``count`` leases: abandoned entries first, then new ones (waits ``block`` s)."""
        ...

    async def start(self, lease: Lease, consumer: str) -> Job | None:
        """Mark the job running; None (entry acknowledged) when it must not run."""
        ...

    async def heartbeat(self, consumer: str, leases: list[Lease]) -> set[str]:
        """Renew leases; returns the ids of those jobs whose cancellation was requested."""
        ...

    async def complete(self, lease: Lease, result: Any) -> bool:
        """Write the final succeeded state once; False when it was already final."""
        ...

    async def fail(self, lease: Lease, error: str, retry_in: float | None) -> Job | None:
        """Queue again after ``retry_in`` s, or (None) fail for good into the dead letters."""
        ...

    async def defer(self, lease: Lease, delay: float) -> None:
        """Put the job back to run after ``delay`` s without counting an attempt."""
        ...

    async def finish_cancelled(self, lease: Lease) -> None: ...

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job now, or ask the worker running it to stop."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[Job]: ...

    async def retire(self, consumer: str) -> None:
        """Forget a stopping worker (and long-idle ones) that hold nothing."""
        ...

    async def ping(self) -> None: ...


class Subscription(msgspec.Struct, kw_only=True):
    """An outgoing event webhook of one flow."""

    id: str
    flow_id: str
    url: str
    events: list[str]
    secret: str
    description: str = ""
    enabled: bool = True
    created_at: float = 0.0


class DeliveryAttempt(msgspec.Struct, kw_only=True):
    """One try at delivering one event to one subscription."""

    message_id: str
    event: str
    job_id: str
    attempt: int
    at: float
    status_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0
    delivered: bool = False


class SubscriptionStore(Protocol):
    async def put(self, subscription: Subscription) -> None: ...

    async def get(self, flow_id: str, subscription_id: str) -> Subscription | None: ...

    async def of_flow(self, flow_id: str) -> list[Subscription]: ...

    async def delete(self, flow_id: str, subscription_id: str) -> bool: ...

    async def delete_flow(self, flow_id: str) -> int:
        """Delete every subscription of a deleted flow, with its delivery log; how many."""
        ...

    async def record(self, subscription_id: str, attempt: DeliveryAttempt) -> None:
        """Append to the delivery log (newest first, bounded)."""
        ...

    async def deliveries(self, subscription_id: str, limit: int = 100) -> list[DeliveryAttempt]: ...
