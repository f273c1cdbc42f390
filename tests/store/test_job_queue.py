"""The JobQueue contract, on both backends: in-process and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from flowserve.store.jobs import Job, JobQueue, Lease
from flowserve.store.memory_jobs import MemoryJobQueue
from flowserve.store.redis_jobs import RedisJobQueue, open_redis
from tests.jobs.conftest import REDIS_URL, SESSION

VISIBILITY = 0.5


@pytest.fixture(params=["memory", "redis"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[JobQueue]:
    if request.param == "memory":
        yield MemoryJobQueue(result_ttl=60)
        return
    prefix = f"flowserve-test-{SESSION}-{uuid.uuid4().hex[:8]}:"
    async with open_redis(REDIS_URL) as client:
        yield RedisJobQueue(client, prefix=prefix, visibility_timeout=VISIBILITY, result_ttl=60)
    cleanup = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in cleanup.scan_iter(match=prefix + "*")]
    if keys:
        await cleanup.delete(*keys)
    await cleanup.aclose()


def new_job(max_attempts: int = 3) -> Job:
    return Job(id=uuid.uuid4().hex, kind="test", payload={"n": 1}, max_attempts=max_attempts)


async def claim_one(queue: JobQueue, consumer: str = "w1") -> Lease:
    async with asyncio.timeout(5):
        while True:
            leases = await queue.claim(consumer, 1, 0.2)
            if leases:
                return leases[0]


async def test_a_final_state_is_written_once(queue: JobQueue) -> None:
    job, created = await queue.enqueue(new_job())
    assert created
    lease = await claim_one(queue)
    started = await queue.start(lease, "w1")
    assert started is not None
    assert started.status == "running"
    assert started.attempts == 1
    assert await queue.complete(lease, {"answer": 42}) is True
    assert await queue.complete(lease, {"answer": 0}) is False
    await queue.fail(lease, "late failure", None)
    stored = await queue.get(job.id)
    assert stored is not None
    assert stored.status == "succeeded"
    assert stored.result == {"answer": 42}
    assert stored.error is None


async def test_retries_come_back_and_exhausted_jobs_are_dead_letters(queue: JobQueue) -> None:
    job, _ = await queue.enqueue(new_job(max_attempts=2))
    lease = await claim_one(queue)
    await queue.start(lease, "w1")
    retried = await queue.fail(lease, "boom 1", 0.05)
    assert retried is not None
    assert retried.status == "queued"
    lease = await claim_one(queue)
    again = await queue.start(lease, "w1")
    assert again is not None
    assert again.attempts == 2
    await queue.fail(lease, "boom 2", None)
    failed = await queue.get(job.id)
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "boom 2")
    assert [d.id for d in await queue.dead_letters()] == [job.id]


async def test_deferring_does_not_count_an_attempt(queue: JobQueue) -> None:
    job, _ = await queue.enqueue(new_job())
    for _ in range(3):
        lease = await claim_one(queue)
        assert await queue.start(lease, "w1") is not None
        await queue.defer(lease, 0.01)
    stored = await queue.get(job.id)
    assert stored is not None
    assert (stored.status, stored.attempts) == ("queued", 0)


async def test_idempotency_key_returns_the_first_job(queue: JobQueue) -> None:
    first, created = await queue.enqueue(new_job(), idempotency_key="k1")
    second, created_again = await queue.enqueue(new_job(), idempotency_key="k1")
    assert (created, created_again) == (True, False)
    assert second.id == first.id


async def test_cancel_marks_queued_jobs_and_flags_running_ones(queue: JobQueue) -> None:
    queued, _ = await queue.enqueue(new_job())
    running, _ = await queue.enqueue(new_job())
    cancelled = await queue.cancel(queued.id)
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    leases = []
    async with asyncio.timeout(5):
        while not leases:
            leases = [
                lease
                for lease in await queue.claim("w1", 2, 0.2)
                if await queue.start(lease, "w1") is not None
            ]
    assert [lease.job_id for lease in leases] == [running.id]
    flagged = await queue.cancel(running.id)
    assert flagged is not None
    assert (flagged.status, flagged.cancel_requested) == ("running", True)
    assert await queue.heartbeat("w1", leases) == {running.id}
    await queue.finish_cancelled(leases[0])
    done = await queue.get(running.id)
    assert done is not None
    assert done.status == "cancelled"


async def test_a_silent_workers_job_is_claimed_by_another_after_the_timeout() -> None:
    prefix = f"flowserve-test-{SESSION}-{uuid.uuid4().hex[:8]}:"
    async with open_redis(REDIS_URL) as client:
        queue = RedisJobQueue(client, prefix=prefix, visibility_timeout=VISIBILITY, result_ttl=60)
        try:
            job, _ = await queue.enqueue(new_job())
            lease = await claim_one(queue, "dead")
            assert await queue.start(lease, "dead") is not None
            # A live worker renewing its lease keeps it...
            await asyncio.sleep(VISIBILITY * 0.6)
            await queue.heartbeat("dead", [lease])
            await asyncio.sleep(VISIBILITY * 0.6)
            assert await queue.claim("other", 1, 0.01) == []
            # ...a silent one loses it.
            taken = await claim_one(queue, "other")
            assert taken.job_id == job.id
            rerun = await queue.start(taken, "other")
            assert rerun is not None
            assert rerun.attempts == 2
            assert await queue.complete(taken, "ok")
            await queue.retire("other")
        finally:
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)


async def test_the_in_process_queue_forgets_expired_jobs_nobody_asks_for() -> None:
    # Finished jobs (with their results) and idempotency keys used to stay in memory
    # for good unless someone read them again: an embedded server with steady webhook
    # traffic grew without bound.
    now = [1000.0]
    queue = MemoryJobQueue(result_ttl=60, clock=lambda: now[0])
    for n in range(3):
        await queue.enqueue(new_job(), idempotency_key=f"key-{n}")
        lease = await claim_one(queue)
        assert await queue.start(lease, "w1") is not None
        assert await queue.complete(lease, {"big": "result"})
    assert len(queue._jobs) == 3
    now[0] += 61
    await queue.enqueue(new_job())  # any later activity sweeps what expired
    assert len(queue._jobs) == 1
    assert not queue._idempotency
    assert not queue._expires
