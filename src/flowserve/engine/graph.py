"""Compile a ``Flow`` once into an immutable ``Graph`` ready to run many times.

Compiling picks a component class for every node by its ``data.type``,
converts the stored field values to parameters, resolves each edge to the
field it feeds, orders the nodes topologically and records which outputs of
each node are needed. Every problem found is reported at once, each naming
its node, in one ``InvalidFlow``. A flow with Loop components also gets its
loops planned (engine/loops.py); a flow without keeps the plain DAG schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from flowserve.engine.component import Component
from flowserve.engine.loops import LoopPlan, loop_output, plan_loops, topological
from flowserve.engine.values import convert_stored
from flowserve.errors import InvalidFlow, UnsupportedComponent
from flowserve.flowfile.model import Edge, Flow, Node

Registry = Mapping[str, type[Component]]
_NO_LOOPS: Mapping[str, LoopPlan] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CompiledNode:
    id: str
    type: str
    display_name: str
    component: Component
    defaults: Mapping[str, Any]
    # Fields whose stored value names a global variable (Langflow's load_from_db).
    variables: Mapping[str, str]
    incoming: tuple[Edge, ...]
    list_fields: frozenset[str]
    sources: Mapping[str, tuple[str, str]]
    wanted: frozenset[str]
    node: Node

    @property
    def role(self) -> str | None:
        return self.component.role

    @property
    def quick(self) -> bool:
        return self.component.quick


@dataclass(frozen=True, slots=True)
class Graph:
    flow: Flow
    nodes: Mapping[str, CompiledNode]
    order: tuple[str, ...]
    roots: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]]
    indegree: Mapping[str, int]
    display_names: Mapping[str, tuple[str, ...]]
    input_nodes: tuple[str, ...]
    output_nodes: tuple[str, ...]
    # Loop node id -> its plan. When there are loops, roots/dependents/indegree
    # schedule the top level only: each loop is one unit standing for its body.
    loops: Mapping[str, LoopPlan] = dataclasses.field(default_factory=lambda: _NO_LOOPS)

    @property
    def id(self) -> str:
        return self.flow.id


def compile_flow(flow: Flow, registry: Registry) -> Graph:
    problems: list[str] = []
    unsupported = [n for n in flow.nodes if n.type not in registry]
    if unsupported:
        listed = ", ".join(f"'{n.id}' (type {n.type})" for n in unsupported)
        raise UnsupportedComponent(f"unsupported component types in nodes {listed}")

    components = {n.id: registry[n.type](n) for n in flow.nodes}
    for node_id, component in components.items():
        problems.extend(f"node '{node_id}': {p}" for p in component.problems())
    incoming, feedback, wanted = _connect(flow, components, problems)
    order = _topological_order(flow, incoming, problems)
    looping = any(loop_output(c) for c in components.values())
    if looping and not problems:
        schedule, loops = plan_loops(order, components, incoming, feedback, problems)
    if problems:
        raise InvalidFlow(problems)

    by_id = {n.id: n for n in flow.nodes}
    nodes: dict[str, CompiledNode] = {}
    for node in flow.nodes:
        component = components[node.id]
        needed = wanted[node.id] or {o.name for o in component.outputs}
        if component.role == "output":
            needed |= {o.name for o in component.outputs}
        nodes[node.id] = CompiledNode(
            id=node.id,
            type=node.type,
            display_name=node.display_name,
            component=component,
            defaults=MappingProxyType(_defaults(node, component)),
            variables=MappingProxyType(
                {
                    name: f.value
                    for name, f in node.fields.items()
                    if f.load_from_db and isinstance(f.value, str) and f.value
                }
            ),
            incoming=tuple(incoming[node.id]),
            list_fields=frozenset(
                e.target_field for e in incoming[node.id] if _is_list_field(component, node, e)
            ),
            sources=MappingProxyType(
                {
                    e.target_field: (e.source, by_id[e.source].display_name)
                    for e in incoming[node.id]
                }
            ),
            wanted=frozenset(needed),
            node=node,
        )

    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for node_id, compiled in nodes.items():
        for source in {e.source for e in compiled.incoming}:
            dependents[source].append(node_id)
            indegree[node_id] += 1
    display_names: dict[str, list[str]] = {}
    for node in flow.nodes:
        display_names.setdefault(node.display_name, []).append(node.id)
    graph = Graph(
        flow=flow,
        nodes=MappingProxyType(nodes),
        order=tuple(order),
        roots=tuple(n for n in order if indegree[n] == 0),
        dependents=MappingProxyType({k: tuple(v) for k, v in dependents.items()}),
        indegree=MappingProxyType(indegree),
        display_names=MappingProxyType({k: tuple(v) for k, v in display_names.items()}),
        input_nodes=tuple(n.id for n in flow.nodes if components[n.id].role == "input"),
        output_nodes=tuple(n.id for n in flow.nodes if components[n.id].role == "output"),
    )
    if not looping:
        return graph
    return dataclasses.replace(
        graph,
        roots=schedule.roots,
        dependents=schedule.dependents,
        indegree=schedule.indegree,
        loops=loops,
    )


def _connect(
    flow: Flow, components: Mapping[str, Component], problems: list[str]
) -> tuple[dict[str, list[Edge]], dict[str, list[Edge]], dict[str, set[str]]]:
    """Each node's incoming edges, each loop's feedback edges, the outputs each node
    must produce; edges with a problem are reported and left out."""
    incoming: dict[str, list[Edge]] = {n.id: [] for n in flow.nodes}
    feedback: dict[str, list[Edge]] = {}
    wanted: dict[str, set[str]] = {n.id: set() for n in flow.nodes}
    for edge in flow.edges:
        problem = _edge_problem(edge, flow, components)
        if problem:
            problems.append(problem)
            continue
        if edge.feedback:
            feedback.setdefault(edge.target, []).append(edge)
        else:
            incoming[edge.target].append(edge)
        wanted[edge.source].add(edge.source_output)
    return incoming, feedback, wanted


def _edge_problem(edge: Edge, flow: Flow, components: Mapping[str, Component]) -> str | None:
    label = f"edge {edge.source}.{edge.source_output} -> {edge.target}.{edge.target_field}"
    source = components[edge.source]
    if edge.source_output not in {o.name for o in source.outputs}:
        return (
            f"{label}: node '{edge.source}' (type {source.node.type}) has no output "
            f"'{edge.source_output}'"
        )
    target = components[edge.target]
    if edge.feedback:
        if loop_output(target) != edge.target_field:
            return (
                f"{label}: node '{edge.target}' (type {target.node.type}) has no loop output "
                f"'{edge.target_field}' to feed back into"
            )
        return None
    if edge.target_field == "code":
        return f"{label}: the code field cannot be connected"
    if edge.target_field not in target.node.fields and not target.accepts_field(edge.target_field):
        return (
            f"{label}: node '{edge.target}' (type {target.node.type}) has no field "
            f"'{edge.target_field}'"
        )
    return None


def _is_list_field(component: Component, node: Node, edge: Edge) -> bool:
    spec = component.input_named(edge.target_field)
    if spec is not None:
        return spec.is_list
    stored = node.fields.get(edge.target_field)
    return bool(stored and stored.is_list)


def _defaults(node: Node, component: Component) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, stored in node.fields.items():
        if name == "code":
            continue
        params[name] = stored.value
    for spec in component.inputs:
        stored_field = node.fields.get(spec.name)
        params[spec.name] = convert_stored(spec, stored_field.value if stored_field else None)
    return params


def _topological_order(
    flow: Flow, incoming: Mapping[str, list[Edge]], problems: list[str]
) -> list[str]:
    # Keep the file's node order among nodes that are ready together: stable output.
    order = topological(
        [n.id for n in flow.nodes], {t: [e.source for e in edges] for t, edges in incoming.items()}
    )
    if len(order) < len(flow.nodes):
        done = set(order)
        stuck = [n.id for n in flow.nodes if n.id not in done]
        problems.append("cycle between nodes " + ", ".join(f"'{n}'" for n in stuck))
    return order
