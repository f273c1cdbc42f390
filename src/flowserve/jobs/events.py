"""Outgoing event webhooks: turn a run's progress into delivery jobs.

The runner asks ``EventPublisher.watch`` before each run (``/run`` calls and
webhook jobs alike). When the flow has subscriptions, the returned watch
announces ``flow_started``, ``component_completed`` (per node),
``flow_completed`` or ``flow_error``; each becomes one ``deliver`` job per
subscriber that wants it. Jobs are queued in event order by one task per run,
and each names the previous one for its subscriber so delivery keeps that order.

Each message (``webhook-id``) is queued at most once per subscriber. Events of
one attempt are named by its run id and position; ``flow_completed`` by the
job: a webhook job run again after its worker died mid-way reports its start
and components again (a new run) but its completion once, and receivers
de-duplicate retried deliveries on ``webhook-id`` as the spec asks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from flowserve.engine.run import INACTIVE, NodeRun
from flowserve.errors import FlowserveError
from flowserve.jobs.delivery import DELIVER
from flowserve.jobs.worker import describe
from flowserve.results import RunResponse, main_text
from flowserve.runner import PreparedRun
from flowserve.singleflight import SingleFlight
from flowserve.store.jobs import Job, JobQueue, Subscription, SubscriptionStore

log = structlog.get_logger(__name__)

EVENTS = ("flow_started", "flow_completed", "flow_error", "component_completed")
CLOSE_TIMEOUT = 10.0


class EventResult(msgspec.Struct):
    output: Any


class EventBody(msgspec.Struct, kw_only=True):
    """What a subscriber receives (the signed JSON body)."""

    event: str
    flow_id: str
    session_id: str
    job_id: str | None
    run_id: str
    result: EventResult | None
    error: str | None
    timestamp: str
    component_id: str | None = None
    component: str | None = None


_encoder = msgspec.json.Encoder()


def _jsonable(value: Any) -> Any:
    try:
        return msgspec.to_builtins(value)
    except TypeError:
        return str(value)


def node_output(node_run: NodeRun) -> Any:
    outputs = {k: v for k, v in node_run.outputs.items() if v is not INACTIVE}
    if len(outputs) == 1:
        return _jsonable(next(iter(outputs.values())))
    return {name: _jsonable(value) for name, value in outputs.items()}


@dataclass
class EventPublisher:
    """The runner's ``RunObserver`` for outgoing event webhooks."""

    queue: JobQueue
    subscriptions: SubscriptionStore
    max_attempts: int = 8
    # Subscriptions are read at most this often per flow and instance.
    cache_seconds: float = 1.0
    _cache: dict[str, tuple[float, list[Subscription]]] = field(default_factory=dict)
    _reads: SingleFlight[str, list[Subscription]] = field(default_factory=SingleFlight)
    _swept: float = 0.0

    def forget(self, flow_id: str) -> None:
        self._cache.pop(flow_id, None)

    def _sweep(self, now: float) -> None:
        """Drop expired entries, at most once per ``cache_seconds``: an entry per flow ever
        run would otherwise stay forever (the soak's flow churn grew memory with them)."""
        if now - self._swept >= self.cache_seconds:
            self._swept = now
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}

    async def subscribers(self, flow_id: str) -> list[Subscription]:
        now = time.monotonic()
        cached = self._cache.get(flow_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        # One store read per flow at a time: with thousands of runs in flight, an
        # expired entry would otherwise send every one of them to the store at once.
        if cached is not None and self._reads.busy(flow_id):
            return cached[1]  # being refreshed: the last list meanwhile
        return await self._reads.run(flow_id, lambda: self._read(flow_id, now))

    async def _read(self, flow_id: str, now: float) -> list[Subscription]:
        try:
            subs = [s for s in await self.subscriptions.of_flow(flow_id) if s.enabled]
        except FlowserveError as exc:
            log.warning("subscriptions_unavailable", flow_id=flow_id, detail=exc.detail)
            subs = []
        self._sweep(now)
        self._cache[flow_id] = (now + self.cache_seconds, subs)
        return subs

    async def watch(self, run: PreparedRun, run_id: str, job_id: str | None) -> RunEvents | None:
        subs = await self.subscribers(run.graph.id)
        if not subs:
            return None
        events = RunEvents(self, subs, run, run_id, job_id)
        events.emit("flow_started")
        return events


class RunEvents:
    """One run's events, queued for delivery in order by a single task."""

    def __init__(
        self,
        publisher: EventPublisher,
        subs: list[Subscription],
        run: PreparedRun,
        run_id: str,
        job_id: str | None,
    ) -> None:
        self._publisher = publisher
        self._subs = subs
        self._flow_id = run.graph.id
        self._session_id = run.session_id
        self._run_id = run_id
        self._job_id = job_id
        self._seq = 0
        self._last: dict[str, str] = {}
        self._pending: asyncio.Queue[tuple[str, str, bytes] | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._enqueue_all())

    def emit(
        self,
        event: str,
        *,
        output: Any = None,
        error: str | None = None,
        node_run: NodeRun | None = None,
    ) -> None:
        wanted = [s for s in self._subs if event in s.events]
        self._seq += 1
        if not wanted:
            return
        body = EventBody(
            event=event,
            flow_id=self._flow_id,
            session_id=self._session_id,
            job_id=self._job_id,
            run_id=self._run_id,
            result=EventResult(output)
            if event in ("flow_completed", "component_completed")
            else None,
            error=error,
            timestamp=datetime.now(UTC).isoformat(),
            component_id=node_run.node.id if node_run else None,
            component=node_run.node.display_name if node_run else None,
        )
        encoded = _encoder.encode(body)
        # A job completes once however often it runs: its flow_completed has one id, so
        # a run repeated after a worker died announces nothing new. Every other event
        # belongs to one attempt (run).
        if event == "flow_completed":
            message_id = f"msg_{self._job_id or self._run_id}_completed"
        else:
            message_id = f"msg_{self._run_id}_{self._seq}"
        for sub in wanted:
            self._pending.put_nowait((sub.id, message_id, encoded))

    def node_done(self, node_run: NodeRun) -> None:
        if not node_run.skipped:
            self.emit("component_completed", output=node_output(node_run), node_run=node_run)

    def completed(self, response: RunResponse) -> None:
        self.emit("flow_completed", output=main_text(response))

    def failed(self, error: BaseException) -> None:
        message = "the run was cancelled" if isinstance(error, asyncio.CancelledError) else None
        self.emit("flow_error", error=message or describe(error))

    async def close(self) -> None:
        self._pending.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._pump), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("event_enqueue_slow", run_id=self._run_id)

    async def _enqueue_all(self) -> None:
        while (item := await self._pending.get()) is not None:
            sub_id, message_id, body = item
            event = msgspec.json.decode(body)["event"]
            job = Job(
                id=uuid.uuid4().hex,
                kind=DELIVER,
                flow_id=self._flow_id,
                max_attempts=self._publisher.max_attempts,
                payload={
                    "flow_id": self._flow_id,
                    "subscription_id": sub_id,
                    "message_id": message_id,
                    "event": event,
                    "body": body.decode(),
                    "after": self._last.get(sub_id),
                },
            )
            try:
                stored, _ = await self._publisher.queue.enqueue(
                    job, idempotency_key=f"deliver:{sub_id}:{message_id}"
                )
            except FlowserveError as exc:
                log.error("event_enqueue_failed", message_id=message_id, detail=exc.detail)
                continue
            self._last[sub_id] = stored.id
