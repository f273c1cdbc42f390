"""Run a compiled ``Graph``: schedule nodes as their inputs become ready.

Nodes whose inputs are all available run concurrently; when only one node is
ready (the common chain ChatInput -> Prompt -> model -> ChatOutput) it is
awaited inline, without creating a task. A run copies nothing it does not
change: each node's parameters are its compiled defaults plus a small
overlay (tweaks, the run's input) plus the values on its incoming edges.

A flow with loops (engine/loops.py) takes a second path, so flows without
keep the one above unchanged: a loop runs its body's schedule once per item,
each iteration's results in a scope of their own over the outer ones.
"""

from __future__ import annotations

import asyncio
import time
from collections import ChainMap
from collections.abc import Coroutine, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn, cast

from flowserve.engine.component import LoopingComponent, NodeContext, RunContext
from flowserve.engine.graph import CompiledNode, Graph
from flowserve.engine.loops import LoopPlan, Schedule
from flowserve.engine.types import Message
from flowserve.errors import FlowserveError, LoopLimitExceeded, RunFailed


class _Inactive:
    """The value of an output on a branch that was not taken (ConditionalRouter)."""

    def __repr__(self) -> str:
        return "INACTIVE"


INACTIVE: Final = _Inactive()


@dataclass(slots=True)
class NodeRun:
    """What one node produced in one run."""

    node: CompiledNode
    outputs: dict[str, Any]
    messages: list[Message]
    logs: list[dict[str, Any]]
    duration: float
    skipped: bool = False
    # time.perf_counter() when the node started: places it on a run's timeline (tracing).
    started: float = 0.0


@dataclass(slots=True)
class GraphRun:
    """Every node's result, in the order they finished."""

    nodes: dict[str, NodeRun] = field(default_factory=dict)
    # The loop bodies' runs of every iteration but the last (whose runs are in
    # ``nodes``), in the order they finished: tracing and metrics count them all.
    iterations: list[NodeRun] = field(default_factory=list)

    def every_run(self) -> Iterable[NodeRun]:
        if not self.iterations:
            return self.nodes.values()
        return [*self.iterations, *self.nodes.values()]


async def execute(
    graph: Graph, ctx: RunContext, overlay: Mapping[str, Mapping[str, Any]]
) -> GraphRun:
    result = GraphRun()
    if graph.loops:
        await _drive(graph, graph, ctx, overlay, result.nodes, result)
        return result
    remaining = dict(graph.indegree)
    ready = list(graph.roots)
    running: dict[asyncio.Task[None], str] = {}
    done_runs = result.nodes
    try:
        while ready or running:
            # Alone, or quick (no slow wait to overlap): inline, without a task.
            inline = _inline(graph, ready, running)
            if inline is not None:
                await _run_node(graph.nodes[inline], ctx, overlay, done_runs)
                _release(graph, inline, remaining, ready)
                continue
            for node_id in ready:
                task = asyncio.create_task(_run_node(graph.nodes[node_id], ctx, overlay, done_runs))
                running[task] = node_id
            ready.clear()
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                node_id = running.pop(task)
                task.result()  # re-raises the node's error
                _release(graph, node_id, remaining, ready)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return result


def _inline(graph: Graph, ready: list[str], running: Mapping[Any, str]) -> str | None:
    """The ready node to run inline next (taken out of ``ready``), if any."""
    if len(ready) == 1 and not running:
        return ready.pop()
    for i, node_id in enumerate(ready):
        if graph.nodes[node_id].quick:
            return ready.pop(i)
    return None


def _release(
    graph: Graph | Schedule, node_id: str, remaining: dict[str, int], ready: list[str]
) -> None:
    for dependent in graph.dependents[node_id]:
        remaining[dependent] -= 1
        if remaining[dependent] == 0:
            ready.append(dependent)


def node_params(
    node: CompiledNode,
    ctx: RunContext,
    overlay: Mapping[str, Any] | None,
    upstream: Mapping[str, NodeRun],
) -> dict[str, Any] | None:
    """The parameters of one node for this run, or None when an input is inactive."""
    params = dict(node.defaults)
    for name, variable in node.variables.items():
        if overlay is None or name not in overlay:
            params[name] = ctx.variables.get(variable)
    if overlay:
        params.update(overlay)
    lists: dict[str, list[Any]] = {}
    for edge in node.incoming:
        value = upstream[edge.source].outputs.get(edge.source_output)
        if value is INACTIVE:
            return None
        if edge.target_field in node.list_fields:
            bucket = lists.setdefault(edge.target_field, [])
            bucket.extend(value) if isinstance(value, list) else bucket.append(value)
        else:
            params[edge.target_field] = value
    params.update(lists)
    return params


async def _run_node(
    node: CompiledNode,
    ctx: RunContext,
    overlay: Mapping[str, Mapping[str, Any]],
    done_runs: MutableMapping[str, NodeRun],
) -> None:
    started = time.perf_counter()
    prepared = _prepare(node, ctx, overlay, done_runs)
    if prepared is None:
        return
    params, nctx = prepared
    try:
        outputs = await node.component.run(nctx, params)
    except Exception as exc:
        _raise_for(node, exc)
    node_run = done_runs[node.id] = NodeRun(
        node, outputs, nctx.sent, nctx.logs, time.perf_counter() - started, started=started
    )
    if ctx.node_done is not None:
        ctx.node_done(node_run)


def _prepare(
    node: CompiledNode,
    ctx: RunContext,
    overlay: Mapping[str, Mapping[str, Any]],
    runs: MutableMapping[str, NodeRun],
) -> tuple[dict[str, Any], NodeContext] | None:
    """A node's parameters and context for this run; None (recorded as skipped) when
    one of its inputs is inactive."""
    params = node_params(node, ctx, overlay.get(node.id), runs)
    if params is None:
        runs[node.id] = NodeRun(
            node, dict.fromkeys(node.wanted, INACTIVE), [], [], 0.0, skipped=True
        )
        return None
    nctx = NodeContext(
        run=ctx,
        node_id=node.id,
        display_name=node.display_name,
        sources=node.sources,
        wanted=node.wanted,
    )
    return params, nctx


def _raise_for(node: CompiledNode, exc: Exception) -> NoReturn:
    """Raise a component's error as the run reports it (see ``_failure``)."""
    failure = _failure(node, exc)
    if failure is exc:
        raise exc
    raise failure from exc


def _failure(node: CompiledNode, exc: Exception) -> FlowserveError:
    """A component's error as the run reports it: naming the component. Our own
    errors keep their status; anything else is a RunFailed."""
    label = f"Error running component '{node.display_name}' ({node.id})"
    if isinstance(exc, FlowserveError):
        exc.detail = f"{label}: {exc.detail}"
        exc.args = (exc.detail,)
        return exc
    return RunFailed(f"{label}: {type(exc).__name__}: {exc}")


# -- flows with loops ---------------------------------------------------------------


async def _drive(
    graph: Graph,
    schedule: Graph | Schedule,
    ctx: RunContext,
    overlay: Mapping[str, Mapping[str, Any]],
    scope: MutableMapping[str, NodeRun],
    result: GraphRun,
) -> None:
    """Run one level of a flow with loops: the top, or one iteration of a loop body."""

    def start(unit: str) -> Coroutine[Any, Any, None]:
        plan = graph.loops.get(unit)
        if plan is None:
            return _run_node(graph.nodes[unit], ctx, overlay, scope)
        return _run_loop(graph, plan, ctx, overlay, scope, result)

    remaining = dict(schedule.indegree)
    ready = list(schedule.roots)
    running: dict[asyncio.Task[None], str] = {}
    try:
        while ready or running:
            if len(ready) == 1 and not running:
                unit = ready.pop()
                await start(unit)
                _release(schedule, unit, remaining, ready)
                continue
            for unit in ready:
                running[asyncio.create_task(start(unit))] = unit
            ready.clear()
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                unit = running.pop(task)
                task.result()
                _release(schedule, unit, remaining, ready)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _run_loop(
    graph: Graph,
    plan: LoopPlan,
    ctx: RunContext,
    overlay: Mapping[str, Mapping[str, Any]],
    scope: MutableMapping[str, NodeRun],
    result: GraphRun,
) -> None:
    node = graph.nodes[plan.node_id]
    component = cast(LoopingComponent, node.component)
    started = time.perf_counter()
    prepared = _prepare(node, ctx, overlay, scope)
    if prepared is None:
        return
    params, nctx = prepared
    try:
        items = await component.items(nctx, params)
    except Exception as exc:
        _raise_for(node, exc)
    if len(items) > ctx.max_loop_iterations:
        raise LoopLimitExceeded(
            f"Error running component '{node.display_name}' ({node.id}): the loop has "
            f"{len(items)} items, more than the {ctx.max_loop_iterations} iterations a loop "
            "may run (FLOWSERVE_MAX_LOOP_ITERATIONS)"
        )
    fed_back: list[Any] = []
    outer = scope.maps if isinstance(scope, ChainMap) else [scope]
    iteration: ChainMap[str, NodeRun] = ChainMap({})
    for index, item in enumerate(items):
        if index:
            result.iterations.extend(iteration.maps[0].values())
        current = NodeRun(node, {plan.output: item}, [], [], 0.0, skipped=True)
        iteration = ChainMap({}, {node.id: current}, *outer)
        await _drive(graph, plan.body, ctx, overlay, iteration, result)
        if plan.feedback is not None:
            value = iteration[plan.feedback.source].outputs.get(plan.feedback.source_output)
            if value is not INACTIVE:
                fed_back.append(value)
    # The last iteration's runs stand for the body in the run's results.
    scope.update(iteration.maps[0])
    outputs = component.finish(items, fed_back)
    node_run = scope[node.id] = NodeRun(
        node, outputs, nctx.sent, nctx.logs, time.perf_counter() - started, started=started
    )
    if ctx.node_done is not None:
        ctx.node_done(node_run)
