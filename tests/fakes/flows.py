"""Run fixture flows through the real engine, with an in-memory session store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from flowserve.components.registry import BUILTIN, build_registry
from flowserve.engine import Graph, GraphRun, Message, RunContext, build_overlay, compile_flow
from flowserve.engine.run import execute
from flowserve.flowfile.parser import parse_flow

FLOWS = Path(__file__).parent.parent / "fixtures" / "flows"


class MessageStore:
    """Every stored message of every session, oldest first."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def session(self, flow_id: str, session_id: str) -> SessionView:
        return SessionView(self, flow_id, session_id)


@dataclass
class SessionView:
    store: MessageStore
    flow_id: str
    session_id: str

    async def append(self, message: Message) -> None:
        self.store.messages.append(message)

    async def history(
        self,
        *,
        limit: int,
        sender: str | None = None,
        order: str = "ASC",
        all_sessions: bool = False,
    ) -> list[Message]:
        selected = [
            m
            for m in self.store.messages
            if m.flow_id == self.flow_id
            and (all_sessions or m.session_id == self.session_id)
            and (sender is None or m.sender == sender)
        ]
        selected = selected[-limit:] if limit > 0 else []
        return selected if order == "ASC" else list(reversed(selected))


@dataclass
class RecordingSink:
    events: list[tuple[str, Any]] = field(default_factory=list)

    def emit(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    def named(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]


def load_graph(name: str) -> Graph:
    document = json.loads((FLOWS / name).read_text())
    return compile_flow(parse_flow(document), build_registry(BUILTIN, plugins=False))


@dataclass
class FlowRun:
    graph: Graph
    result: GraphRun
    ctx: RunContext

    def output_text(self) -> str:
        texts = [
            m.text
            for node_id in self.graph.output_nodes
            for m in self.result.nodes[node_id].messages
        ]
        return "\n".join(texts)


async def run_graph(
    graph: Graph,
    *,
    input_value: str = "",
    tweaks: Mapping[str, Any] | None = None,
    variables: Mapping[str, str] | None = None,
    store: MessageStore | None = None,
    session_id: str | None = None,
    streaming: bool = False,
    sink: RecordingSink | None = None,
    http: httpx.AsyncClient | None = None,
    services: Mapping[str, Any] | None = None,
) -> FlowRun:
    overlay = build_overlay(graph, tweaks)
    for node_id in graph.input_nodes:
        overlay.setdefault(node_id, {})["input_value"] = input_value
    store = store if store is not None else MessageStore()
    session = session_id or graph.id
    ctx = RunContext(
        flow_id=graph.id,
        flow_name=graph.flow.name,
        session_id=session,
        memory=store.session(graph.id, session),
        variables=dict(variables or {}),
        services={**({"http": http} if http is not None else {}), **(services or {})},
        streaming=streaming,
        **({"sink": sink} if sink is not None else {}),
    )
    result = await execute(graph, ctx, overlay)
    return FlowRun(graph, result, ctx)


def node_context(
    *,
    variables: Mapping[str, str] | None = None,
    wanted: set[str] | None = None,
    store: MessageStore | None = None,
    session_id: str = "s1",
    flow_id: str = "flow-1",
    node_id: str = "Node-1",
    services: Mapping[str, Any] | None = None,
) -> Any:
    """A NodeContext for calling one component's ``run`` directly."""
    from flowserve.engine.component import NodeContext

    store = store if store is not None else MessageStore()
    run = RunContext(
        flow_id=flow_id,
        flow_name="test",
        session_id=session_id,
        memory=store.session(flow_id, session_id),
        variables=dict(variables or {}),
        services=dict(services or {}),
    )
    return NodeContext(
        run=run,
        node_id=node_id,
        display_name=node_id,
        sources={},
        wanted=frozenset(wanted or set()),
    )


def make_node(type_name: str, node_id: str = "Node-1", **fields: Any) -> Any:
    """A flow Node of ``type_name`` whose template holds ``fields``."""
    from flowserve.flowfile.model import Field, Node

    return Node(
        id=node_id,
        type=type_name,
        display_name=type_name,
        fields={name: Field(name=name, type="str", value=value) for name, value in fields.items()},
    )
