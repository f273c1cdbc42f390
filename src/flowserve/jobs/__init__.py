"""Background work on a job queue: webhook runs, v2 workflow runs, event deliveries.

``open_jobs`` picks the backend (Redis Streams when ``redis_url`` is set, else
the in-process queue, which is not durable) and wires the event publisher into
the runner; ``running_worker`` runs a ``Worker`` for as long as its block
(inside ``flowserve serve``); ``flowserve worker`` runs one on its own.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from flowserve.jobs.delivery import DELIVER, Allowlist, Deliverer
from flowserve.jobs.events import EventPublisher
from flowserve.jobs.webhooks import WEBHOOK, WebhookRun
from flowserve.jobs.worker import Backoff, Worker
from flowserve.jobs.workflows import WorkflowRun
from flowserve.runner import Runner
from flowserve.settings import Settings
from flowserve.store.jobs import JobQueue, SubscriptionStore
from flowserve.store.memory_jobs import MemoryJobQueue, MemorySubscriptionStore
from flowserve.workflows import WORKFLOW


@dataclass(frozen=True, slots=True)
class Jobs:
    queue: JobQueue
    subscriptions: SubscriptionStore
    publisher: EventPublisher
    allow: Allowlist
    durable: bool

    def worker(self, settings: Settings, runner: Runner, http: httpx.AsyncClient) -> Worker:
        deliverer = Deliverer(
            self.queue, self.subscriptions, http, self.allow, timeout=settings.webhook_timeout
        )
        return Worker(
            self.queue,
            {WEBHOOK: WebhookRun(runner), WORKFLOW: WorkflowRun(runner), DELIVER: deliverer},
            concurrency=settings.job_concurrency,
            visibility_timeout=settings.job_visibility_timeout,
            backoff=Backoff(settings.job_retry_base, settings.job_retry_max),
            poll=min(1.0, settings.job_visibility_timeout / 3),
            interruptible_claims=not self.durable,
        )


@asynccontextmanager
async def open_jobs(settings: Settings, runner: Runner) -> AsyncIterator[Jobs]:
    """The job queue and subscriptions; sets ``runner.observer`` to the event publisher."""
    allow = Allowlist.parse(settings.webhook_allowlist)
    if not settings.redis_url:
        queue = MemoryJobQueue(result_ttl=settings.job_result_ttl)
        subs = MemorySubscriptionStore()
        yield _wire(settings, runner, queue, subs, allow, durable=False)
        return
    from flowserve.store.redis_jobs import RedisJobQueue, RedisSubscriptionStore, open_redis

    async with open_redis(
        settings.redis_url,
        pool_size=settings.redis_pool_size,
        pool_timeout=settings.redis_pool_timeout,
    ) as client:
        prefix = settings.redis_prefix
        redis_queue = RedisJobQueue(
            client,
            prefix=prefix,
            visibility_timeout=settings.job_visibility_timeout,
            result_ttl=settings.job_result_ttl,
        )
        redis_subs = RedisSubscriptionStore(client, prefix=prefix, log_ttl=settings.job_result_ttl)
        yield _wire(settings, runner, redis_queue, redis_subs, allow, durable=True)


def _wire(
    settings: Settings,
    runner: Runner,
    queue: JobQueue,
    subs: SubscriptionStore,
    allow: Allowlist,
    *,
    durable: bool,
) -> Jobs:
    publisher = EventPublisher(queue, subs, max_attempts=settings.webhook_max_attempts)
    runner.observer = publisher
    return Jobs(queue, subs, publisher, allow, durable)


@asynccontextmanager
async def running_worker(worker: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await task


async def serve_worker(worker: Worker) -> None:
    """Run ``worker`` until SIGINT or SIGTERM (``flowserve worker``)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()
