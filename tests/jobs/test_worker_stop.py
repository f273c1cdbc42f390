"""Stopping a worker that waits for jobs."""

from __future__ import annotations

import asyncio

from flowserve.jobs import running_worker
from flowserve.jobs.worker import Worker
from flowserve.store.memory_jobs import MemoryJobQueue


async def test_an_idle_in_process_worker_stops_without_waiting_out_its_poll() -> None:
    worker = Worker(MemoryJobQueue(result_ttl=60), {}, poll=3600, interruptible_claims=True)
    # An hour's poll: stopping must abandon the waiting claim (the timeout catches a hang).
    async with asyncio.timeout(10), running_worker(worker):
        await asyncio.sleep(0.05)  # it is waiting in claim() now
