"""The service layer: flow lookup -> cached compile -> session memory -> engine -> result.

Used by the HTTP API, the job worker and the CLI alike. A run is prepared
first (flow found, tweaks validated) so that every problem with the request is
reported before anything runs or any stream starts; then executed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

import msgspec

from flowserve.engine import (
    EventSink,
    Graph,
    Message,
    Registry,
    RunContext,
    RunOwner,
    build_overlay,
    execute,
)
from flowserve.engine.component import NullSink
from flowserve.engine.run import GraphRun, NodeRun
from flowserve.engine.tweaks import Overlay
from flowserve.errors import FlowserveError, InvalidRunInput, RunTimeout
from flowserve.flowcache import GraphCache, compile_record
from flowserve.outcome import RunOutcome
from flowserve.results import RunResponse, run_response
from flowserve.store.base import FlowRecord, FlowStore, MessageStore

# Session ids name Redis keys and sets; Langflow sets no bound, ours keeps a made-up
# multi-megabyte id from being copied into several keys (UUIDs are 36 characters).
MAX_SESSION_ID = 1024
SessionId = Annotated[str, msgspec.Meta(max_length=MAX_SESSION_ID)]


class RunRequest(msgspec.Struct, kw_only=True):
    """Langflow's run body (``SimplifiedAPIRequest``)."""

    input_value: str | None = None
    # Langflow accepts null for both: null input_type feeds every input component
    # (as "any"); null output_type is taken as the default, "chat".
    input_type: Literal["chat", "text", "any"] | None = "chat"
    output_type: Literal["chat", "text", "any", "debug"] | None = "chat"
    output_component: str | None = ""
    tweaks: dict[str, Any] | None = None
    session_id: SessionId | None = None


class SessionBuffer:
    """The session's memory for one run: reads the store, buffers writes.

    Messages appended during a run are written in one round trip when the run
    ends (``flush``), and are visible to later reads of the same run.
    """

    __slots__ = ("_flow_id", "_pending", "_session_id", "_store", "_ttl")

    def __init__(self, store: MessageStore, flow_id: str, session_id: str, ttl: int) -> None:
        self._store = store
        self._flow_id = flow_id
        self._session_id = session_id
        self._ttl = ttl
        self._pending: list[Message] = []

    async def append(self, message: Message) -> None:
        self._pending.append(message)

    async def history(
        self,
        *,
        limit: int,
        sender: str | None = None,
        order: str = "ASC",
        all_sessions: bool = False,
    ) -> list[Message]:
        stored = await self._store.history(
            self._flow_id,
            None if all_sessions else self._session_id,
            limit=limit,
            sender=sender,
            order="ASC",
            ttl=self._ttl,
        )
        pending = [m for m in self._pending if sender is None or m.sender == sender]
        combined = [*stored, *pending][-limit:] if limit > 0 else []
        return combined if order.upper() == "ASC" else combined[::-1]

    async def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            await self._store.append(self._flow_id, self._session_id, pending, self._ttl)


@dataclass(frozen=True, slots=True)
class PreparedRun:
    graph: Graph
    overlay: Overlay
    session_id: str
    inputs: dict[str, Any]
    output_ids: tuple[str, ...]
    ttl: int
    variables: Mapping[str, str]
    # W3C ``traceparent`` of the caller, so a traced run joins the caller's trace.
    traceparent: str = ""
    # Who submitted the run (the files it may read, the owner of those it saves).
    owner: RunOwner | None = None


WEBHOOK_COMPONENT = "Webhook"
_WEBHOOK_REQUEST = RunRequest(input_value="")


class RunWatch(Protocol):
    """Follows one run for outgoing event webhooks; every call returns at once."""

    def node_done(self, node_run: NodeRun) -> None: ...

    def completed(self, response: RunResponse) -> None: ...

    def failed(self, error: BaseException) -> None: ...

    async def close(self) -> None:
        """Wait until everything announced has been handed on (queued)."""
        ...


class RunObserver(Protocol):
    async def watch(self, run: PreparedRun, run_id: str, job_id: str | None) -> RunWatch | None: ...


@dataclass
class Runner:
    flows: FlowStore
    messages: MessageStore
    registry: Registry
    environment: Mapping[str, str]
    session_ttl: int = 1800
    run_timeout: float = 300.0
    max_loop_iterations: int = 1000
    services: Mapping[str, Any] = field(default_factory=dict)
    # Follows runs for outgoing event webhooks (flow_started, component_completed, ...).
    observer: RunObserver | None = None
    # Told how every run ended (metrics, tracing); must be cheap and must not raise.
    outcome_observer: Callable[[RunOutcome], None] | None = None
    cache: GraphCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = GraphCache(self.flows, self.registry)

    async def graph(self, ref: str) -> tuple[Graph, FlowRecord]:
        """The compiled graph of a flow (by id or endpoint name), from the cache once warm."""
        entry = await self.cache.get(ref)
        return entry.graph, entry.record

    def forget(self, flow_id: str) -> None:
        self.cache.forget([flow_id])

    async def prepare(
        self,
        ref: str,
        request: RunRequest,
        variables: Mapping[str, str] | None = None,
        owner: RunOwner | None = None,
    ) -> PreparedRun:
        graph, record = await self.graph(ref)
        overlay = build_overlay(graph, request.tweaks)
        if request.input_value is not None:
            for node_id in graph.input_nodes:
                if request.input_type in (None, "any") or request.input_type in node_id.lower():
                    overlay.setdefault(node_id, {})["input_value"] = request.input_value
        return PreparedRun(
            graph=graph,
            overlay=overlay,
            session_id=request.session_id or graph.id,
            # Langflow reports the inputs it was given: {} when there was no input_value.
            inputs={} if request.input_value is None else {"input_value": request.input_value},
            output_ids=_output_ids(graph, request),
            ttl=record.session_ttl or self.session_ttl,
            variables={**self.environment, **variables} if variables else self.environment,
            owner=owner,
        )

    async def webhook_graph(self, ref: str) -> tuple[Graph, FlowRecord, tuple[str, ...]]:
        """The flow's graph and its Webhook nodes; 422 when it has none."""
        graph, record = await self.graph(ref)
        nodes = tuple(n.id for n in graph.nodes.values() if n.type == WEBHOOK_COMPONENT)
        if not nodes:
            raise InvalidRunInput(
                f"Flow {record.id} has no Webhook component, so it cannot be triggered by "
                "webhook; add a Webhook component to the flow"
            )
        return graph, record, nodes

    async def prepare_webhook(
        self, ref: str, data: str, owner: RunOwner | None = None
    ) -> PreparedRun:
        """A run whose Webhook nodes receive ``data`` (the request body as text)."""
        _, _, nodes = await self.webhook_graph(ref)
        # Langflow runs a webhook with input_value "" (so its result echoes that input).
        run = await self.prepare(ref, _WEBHOOK_REQUEST, owner=owner)
        for node_id in nodes:
            run.overlay.setdefault(node_id, {})["data"] = data
        return run

    async def execute(
        self, run: PreparedRun, sink: EventSink | None = None, *, job_id: str | None = None
    ) -> RunResponse:
        started = time.perf_counter()
        memory = SessionBuffer(self.messages, run.graph.id, run.session_id, run.ttl)
        ctx = RunContext(
            flow_id=run.graph.id,
            flow_name=run.graph.flow.name,
            session_id=run.session_id,
            memory=memory,
            sink=sink or NullSink(),
            variables=run.variables,
            services=self.services,
            streaming=sink is not None,
            owner=run.owner,
            max_loop_iterations=self.max_loop_iterations,
        )
        watch = await self.observer.watch(run, ctx.run_id, job_id) if self.observer else None
        if watch is not None:
            ctx.node_done = watch.node_done
        started_at = time.time()
        status = "internal_error"
        graph_run: GraphRun | None = None
        try:
            async with asyncio.timeout(self.run_timeout):
                graph_run = await execute(run.graph, ctx, run.overlay)
            status = "success"
        except TimeoutError as exc:
            status = RunTimeout.code
            error = RunTimeout(f"The run did not finish within {self.run_timeout:g} s")
            if watch is not None:
                watch.failed(error)
                await watch.close()
            raise error from exc
        except BaseException as exc:
            if isinstance(exc, FlowserveError):
                status = exc.code
            elif isinstance(exc, asyncio.CancelledError):
                status = "cancelled"  # the client went away, or the server is shutting down
            if watch is not None:
                watch.failed(exc)
                await watch.close()
            raise
        finally:
            await memory.flush()
            if self.outcome_observer is not None:
                self.outcome_observer(_outcome(run, ctx, status, started_at, started, graph_run))
        response = run_response(
            session_id=run.session_id,
            inputs=run.inputs,
            graph_run=graph_run,
            output_ids=run.output_ids,
            duration=time.perf_counter() - started,
            usage=ctx.usage,
            run_id=ctx.run_id,
        )
        if watch is not None:
            watch.completed(response)
            await watch.close()
        return response


def _outcome(
    run: PreparedRun,
    ctx: RunContext,
    status: str,
    started_at: float,
    started: float,
    graph_run: GraphRun | None,
) -> RunOutcome:
    return RunOutcome(
        flow_id=run.graph.id,
        flow_name=run.graph.flow.name,
        run_id=ctx.run_id,
        session_id=run.session_id,
        status=status,
        started_at=started_at,
        duration=time.perf_counter() - started,
        usage=ctx.usage,
        streaming=ctx.streaming,
        graph_run=graph_run,
        origin=started,
        traceparent=run.traceparent,
    )


def compile_graph(record: FlowRecord, registry: Registry) -> Graph:
    return compile_record(record, registry)


def _output_ids(graph: Graph, request: RunRequest) -> tuple[str, ...]:
    if request.output_component:
        ref = request.output_component
        if ref in graph.nodes:
            return (ref,)
        # As Langflow's Graph._run: a display name selects every node that bears it.
        ids = graph.display_names.get(ref, ())
        if ids:
            return ids
        raise InvalidRunInput(f"output_component '{ref}' names no node of this flow")
    if request.output_type == "debug":
        return graph.order
    kind = request.output_type or "chat"
    chosen = tuple(
        node_id for node_id in graph.output_nodes if kind == "any" or kind in node_id.lower()
    )
    # As Langflow: when no output component is of the asked type (a flow ending in a
    # Text Output, run with the default output_type "chat"), every output is reported.
    return chosen or graph.output_nodes
