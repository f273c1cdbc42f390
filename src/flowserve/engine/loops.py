"""Loops: the one kind of cycle a flow may hold, planned once when it compiles.

Langflow's Loop closes a cycle: its loop output (``item``) feeds the loop body,
and the body's last node feeds its result back into that same handle (a
*feedback edge*). Leaving feedback edges aside the flow must be acyclic; any
other cycle is an error naming its nodes. The body of a loop is every node its
loop output reaches; it runs once per item as its own small DAG, a
``Schedule``, in which a nested loop is a single unit standing for its body.
The outer schedule sees a loop the same way: one unit that waits for
everything its body reads from outside, and releases the nodes reading its
``done`` output once the items are exhausted. All of it is computed here, so
the compiled Graph stays immutable and a run only keeps per-iteration results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from flowserve.engine.component import Component, LoopingComponent
from flowserve.flowfile.model import Edge


@dataclass(frozen=True, slots=True)
class Schedule:
    """A DAG of units to run: node ids, a loop's id standing for the loop and its body."""

    roots: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]]
    indegree: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class LoopPlan:
    node_id: str
    # The loop output: during an iteration its value is the current item.
    output: str
    # Body end -> loop output; None for a loop whose loop output feeds nothing.
    feedback: Edge | None
    # Every node of the body, nested loops' bodies included.
    members: frozenset[str]
    body: Schedule


EMPTY_SCHEDULE = Schedule((), MappingProxyType({}), MappingProxyType({}))


def loop_output(component: Component) -> str | None:
    if not isinstance(component, LoopingComponent):
        return None
    return next((o.name for o in component.outputs if o.allows_loop), None)


def topological(units: Sequence[str], depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """``units`` ordered so each comes after what it depends on; ties keep ``units``'
    order. Units on (or behind) a cycle are left out: the caller names them."""
    position = {u: i for i, u in enumerate(units)}
    indegree = dict.fromkeys(units, 0)
    dependents: dict[str, set[str]] = {u: set() for u in units}
    for unit in units:
        for dep in set(depends_on.get(unit, ())):
            indegree[unit] += 1
            dependents[dep].add(unit)
    ready = [u for u in units if indegree[u] == 0]
    order: list[str] = []
    while ready:
        unit = ready.pop(0)
        order.append(unit)
        for dep in sorted(dependents[unit], key=position.__getitem__):
            indegree[dep] -= 1
            if indegree[dep] == 0:
                ready.append(dep)
    return order


def plan_loops(
    order: Sequence[str],
    components: Mapping[str, Component],
    incoming: Mapping[str, Sequence[Edge]],
    feedback: Mapping[str, Sequence[Edge]],
    problems: list[str],
) -> tuple[Schedule, Mapping[str, LoopPlan]]:
    """The top-level schedule and every loop's plan; problems found are appended."""
    successors: dict[str, set[str]] = {n: set() for n in order}
    for target, edges in incoming.items():
        for edge in edges:
            successors[edge.source].add(target)
    outputs = {n: out for n in order if (out := loop_output(components[n])) is not None}
    members: dict[str, frozenset[str]] = {}
    for loop, output in outputs.items():
        members[loop] = _body(loop, output, successors, incoming, feedback, problems)
    _check_overlaps(order, members, problems)
    if problems:
        return EMPTY_SCHEDULE, MappingProxyType({})

    owner = _owners(order, members)
    top = _schedule(None, order, owner, members, incoming, problems)
    plans = {
        loop: LoopPlan(
            node_id=loop,
            output=output,
            feedback=feedback[loop][0] if feedback.get(loop) else None,
            members=members[loop],
            body=_schedule(loop, order, owner, members, incoming, problems),
        )
        for loop, output in outputs.items()
    }
    return top, MappingProxyType(plans)


def _body(
    loop: str,
    output: str,
    successors: Mapping[str, set[str]],
    incoming: Mapping[str, Sequence[Edge]],
    feedback: Mapping[str, Sequence[Edge]],
    problems: list[str],
) -> frozenset[str]:
    starts = {
        t
        for t, edges in incoming.items()
        for e in edges
        if (e.source, e.source_output) == (loop, output)
    }
    body: set[str] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node not in body:
            body.add(node)
            stack.extend(successors[node])
    fed_back = feedback.get(loop, ())
    label = f"node '{loop}' (a loop)"
    if len(fed_back) > 1:
        sources = ", ".join(f"'{e.source}'" for e in fed_back)
        problems.append(f"{label}: several nodes feed back into '{output}' ({sources}); keep one")
    if body and not fed_back:
        problems.append(
            f"{label}: its '{output}' output feeds the loop body but nothing feeds back "
            f"into '{output}'; connect the body's last output to the loop's '{output}' handle"
        )
    for edge in fed_back:
        if edge.source not in body:
            problems.append(
                f"{label}: node '{edge.source}' feeds back into '{output}' but is not in the "
                f"loop body (it is not reached from the '{output}' output)"
            )
    for node in body:
        for edge in incoming[node]:
            if edge.source == loop and edge.source_output != output:
                problems.append(
                    f"{label}: node '{node}' is in the loop body but reads the loop's "
                    f"'{edge.source_output}' output, which exists only once the loop ends"
                )
    return frozenset(body)


def _check_overlaps(
    order: Sequence[str], members: Mapping[str, frozenset[str]], problems: list[str]
) -> None:
    loops = [n for n in order if n in members]
    for i, first in enumerate(loops):
        for second in loops[i + 1 :]:
            if first in members[second] or second in members[first]:
                continue  # nested
            shared = members[first] & members[second]
            if shared:
                listed = ", ".join(f"'{n}'" for n in order if n in shared)
                problems.append(
                    f"nodes {listed} are in the bodies of two loops, '{first}' and "
                    f"'{second}'; a node can be in one loop body (or in nested ones)"
                )


def _owners(order: Sequence[str], members: Mapping[str, frozenset[str]]) -> dict[str, str | None]:
    """Each node's innermost enclosing loop (None at the top level)."""
    owner: dict[str, str | None] = {}
    for node in order:
        around = [loop for loop, body in members.items() if node in body]
        owner[node] = min(around, key=lambda loop: len(members[loop])) if around else None
    return owner


def _schedule(
    level: str | None,
    order: Sequence[str],
    owner: Mapping[str, str | None],
    members: Mapping[str, frozenset[str]],
    incoming: Mapping[str, Sequence[Edge]],
    problems: list[str],
) -> Schedule:
    """The DAG of the units directly inside ``level`` (a loop, or None: the flow)."""

    def unit_of(node: str) -> str | None:
        current: str | None = node
        while current is not None:
            if owner[current] == level:
                return current
            current = owner[current]
        return None

    units = [n for n in order if owner[n] == level]
    depends_on: dict[str, set[str]] = {}
    for unit in units:
        deps = depends_on[unit] = set()
        for node in (unit, *members.get(unit, ())):
            for edge in incoming[node]:
                source = unit_of(edge.source)
                if source is not None and source != unit:
                    deps.add(source)
    ordered = topological(units, depends_on)
    if len(ordered) < len(units):
        stuck = ", ".join(f"'{u}'" for u in units if u not in set(ordered))
        where = f"in the body of loop '{level}'" if level else "around a loop"
        problems.append(
            f"cycle {where} between {stuck}: a loop's body may read nodes that run before "
            "the loop, not nodes that wait for the loop to end"
        )
    dependents: dict[str, list[str]] = {u: [] for u in units}
    for unit in ordered:
        for dep in depends_on[unit]:
            dependents[dep].append(unit)
    return Schedule(
        roots=tuple(u for u in ordered if not depends_on[u]),
        dependents=MappingProxyType({k: tuple(v) for k, v in dependents.items()}),
        indegree=MappingProxyType({u: len(depends_on[u]) for u in units}),
    )
