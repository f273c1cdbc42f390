"""Run a compiled ``Graph``: schedule nodes as their inputs become ready.

Nodes whose inputs are all available run concurrently; when only one node is
ready (the common chain ChatInput -> Prompt -> model -> ChatOutput) it is
awaited inline, without creating a task. A run copies nothing it does not
change: each node's parameters are its compiled defaults plus a small
overlay (tweaks, the run's input) plus the values on its incoming edges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flowserve.engine.component import NodeContext, RunContext
from flowserve.engine.graph import CompiledNode, Graph
from flowserve.engine.types import Message
from flowserve.errors import FlowserveError, RunFailed


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


async def execute(
    graph: Graph, ctx: RunContext, overlay: Mapping[str, Mapping[str, Any]]
) -> GraphRun:
    result = GraphRun()
    remaining = dict(graph.indegree)
    ready = list(graph.roots)
    running: dict[asyncio.Task[None], str] = {}
    try:
        while ready or running:
            if len(ready) == 1 and not running:
                node_id = ready.pop()
                await _run_node(graph.nodes[node_id], ctx, overlay, result)
                _release(graph, node_id, remaining, ready)
                continue
            for node_id in ready:
                task = asyncio.create_task(_run_node(graph.nodes[node_id], ctx, overlay, result))
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


def _release(graph: Graph, node_id: str, remaining: dict[str, int], ready: list[str]) -> None:
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
    result: GraphRun,
) -> None:
    started = time.perf_counter()
    params = node_params(node, ctx, overlay.get(node.id), result.nodes)
    if params is None:
        result.nodes[node.id] = NodeRun(
            node, dict.fromkeys(node.wanted, INACTIVE), [], [], 0.0, skipped=True
        )
        return
    nctx = NodeContext(
        run=ctx,
        node_id=node.id,
        display_name=node.display_name,
        sources=node.sources,
        wanted=node.wanted,
    )
    try:
        outputs = await node.component.run(nctx, params)
    except FlowserveError as exc:
        exc.detail = f"Error running component '{node.display_name}' ({node.id}): {exc.detail}"
        exc.args = (exc.detail,)
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise RunFailed(
            f"Error running component '{node.display_name}' ({node.id}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    node_run = result.nodes[node.id] = NodeRun(
        node, outputs, nctx.sent, nctx.logs, time.perf_counter() - started, started=started
    )
    if ctx.node_done is not None:
        ctx.node_done(node_run)
