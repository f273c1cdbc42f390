"""Tweaks: per-run overrides of node fields, with Langflow's addressing rules.

A tweak keyed by a node id (or by a node's display name when it is unique)
holds ``{field: value}`` for that node. A top-level tweak whose value is not an
object applies to every node that has that field, as Langflow does. Unlike
Langflow, which silently ignores what it cannot apply, every tweak that names
an unknown node or field, has the wrong type or targets ``code`` is a 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowserve.engine.graph import CompiledNode, Graph
from flowserve.engine.values import convert_tweak, tweak_type_error
from flowserve.errors import InvalidTweaks

Overlay = dict[str, dict[str, Any]]

# An error names the problem, never echoes the request: a body of 20,000 bad tweaks
# (or one with a megabyte-long key) gets a short answer listing the first few.
MAX_LISTED = 10
MAX_NAME = 100


def build_overlay(graph: Graph, tweaks: Mapping[str, Any] | None) -> Overlay:
    overlay: Overlay = {}
    if not tweaks:
        return overlay
    problems: list[str] = []
    for key, value in tweaks.items():
        if isinstance(value, dict):
            node = _find_node(graph, key, problems)
            if node is not None:
                for field, field_value in value.items():
                    _apply(node, str(field), field_value, overlay, problems)
            continue
        holders = [n for n in graph.nodes.values() if _has_field(n, key)]
        if not holders and (key in graph.nodes or key in graph.display_names):
            problems.append(
                f"tweak '{key}': a node's tweaks must be an object of field values, "
                f"got {type(value).__name__}"
            )
        elif not holders:
            problems.append(
                f"tweak '{_shown(key)}': no node with this id or display name, "
                "and no node has a field of this name"
            )
        for node in holders:
            _apply(node, key, value, overlay, problems)
    if problems:
        listed = "; ".join(problems[:MAX_LISTED])
        if len(problems) > MAX_LISTED:
            listed += f"; and {len(problems) - MAX_LISTED} more"
        raise InvalidTweaks("Invalid tweaks: " + listed)
    return overlay


def _shown(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[:MAX_NAME] + "..."


def _find_node(graph: Graph, key: str, problems: list[str]) -> CompiledNode | None:
    node = graph.nodes.get(key)
    if node is not None:
        return node
    ids = graph.display_names.get(key, ())
    if len(ids) == 1:
        return graph.nodes[ids[0]]
    if ids:
        problems.append(
            f"tweak '{key}': display name matches several nodes ({', '.join(ids)}); use a node id"
        )
    else:
        problems.append(f"tweak '{_shown(key)}': no node with this id or display name")
    return None


def _has_field(node: CompiledNode, name: str) -> bool:
    return name in node.node.fields or node.component.accepts_field(name)


def _apply(
    node: CompiledNode, field: str, value: Any, overlay: Overlay, problems: list[str]
) -> None:
    where = f"tweak '{node.id}.{_shown(field)}'"
    if field == "code":
        problems.append(f"{where}: the code field cannot be tweaked")
        return
    if not _has_field(node, field):
        problems.append(
            f"{where}: node '{node.id}' (type {node.type}) has no field '{_shown(field)}'"
        )
        return
    stored = node.node.fields.get(field)
    spec = node.component.input_named(field)
    # A field the component declares but the flow file lacks is typed by the declaration.
    error = tweak_type_error(
        stored.type if stored else "", bool(stored and stored.is_list), spec, value
    )
    if error:
        problems.append(f"{where}: {error}, got {type(value).__name__}")
        return
    overlay.setdefault(node.id, {})[field] = convert_tweak(spec, value)
