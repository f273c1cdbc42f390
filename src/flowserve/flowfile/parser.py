"""Parse a Langflow flow export into our ``Flow`` model.

Accepted documents: a full export (``{"id", "name", "data": {"nodes", "edges"}}``)
or a bare graph (``{"nodes": [...], "edges": [...]}``). Note nodes are dropped;
the ``code`` field of every node is kept as data and never executed. Structural
problems (malformed JSON, duplicate node ids, edges to missing nodes) raise
``InvalidFlow`` naming each node involved; checks that need the component
registry (unknown types, fields, cycles) happen when the engine compiles.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from flowserve.errors import InvalidFlow, MalformedJSON
from flowserve.flowfile.model import Edge, Field, Flow, Node, Output

_NOTE_TYPES = frozenset({"noteNode", "note", "NoteNode"})

# Template keys that are not fields (Langflow's own bookkeeping).
_NOT_FIELDS = frozenset({"_type"})


class _Handle(msgspec.Struct):
    id: str | None = None
    name: str | None = None
    fieldName: str | None = None


class _EdgeData(msgspec.Struct):
    sourceHandle: _Handle | None = None
    targetHandle: _Handle | None = None


class _RawEdge(msgspec.Struct):
    source: str
    target: str
    data: _EdgeData | None = None
    sourceHandle: str | None = None
    targetHandle: str | None = None
    id: str | None = None


class _RawOutput(msgspec.Struct):
    name: str
    types: list[str] = msgspec.field(default_factory=list)
    display_name: str | None = None


class _RawNodeBody(msgspec.Struct):
    template: dict[str, Any] = msgspec.field(default_factory=dict)
    display_name: str | None = None
    outputs: list[_RawOutput] = msgspec.field(default_factory=list)


class _RawNodeData(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    node: _RawNodeBody | None = None
    display_name: str | None = None


class _RawNode(msgspec.Struct):
    id: str
    data: _RawNodeData
    type: str | None = None


class _RawGraph(msgspec.Struct):
    nodes: list[_RawNode] = msgspec.field(default_factory=list)
    edges: list[_RawEdge] = msgspec.field(default_factory=list)


class _RawFlow(msgspec.Struct):
    data: _RawGraph | None = None
    id: str | None = None
    name: str | None = None
    description: str | None = None
    endpoint_name: str | None = None
    webhook: bool | None = None
    mcp_enabled: bool | None = None
    access_type: str | None = None
    folder_id: str | None = None


def malformed_json(prefix: str, exc: Exception) -> MalformedJSON:
    """The 400 for bytes that do not decode as JSON, worded the same whichever msgspec
    release decoded them: 0.22 raised UnicodeDecodeError for bad UTF-8 and 0.23 raises a
    DecodeError saying "Invalid UTF-8 encoded string"."""
    if isinstance(exc, UnicodeDecodeError) or "UTF-8" in str(exc):
        return MalformedJSON(f"{prefix}: not valid UTF-8")
    if isinstance(exc, RecursionError):
        return MalformedJSON(f"{prefix}: nested too deeply")
    return MalformedJSON(f"{prefix}: {exc}")


JSON_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def load_document(content: bytes | str) -> dict[str, Any]:
    """Decode flow JSON bytes into a dict, with a 400 for JSON that does not parse."""
    try:
        document = msgspec.json.decode(content)
    except JSON_ERRORS as exc:
        raise malformed_json("Malformed flow JSON", exc) from exc
    if not isinstance(document, dict):
        raise InvalidFlow("a flow must be a JSON object with 'data.nodes' and 'data.edges'")
    return document


def parse_flow(document: dict[str, Any], *, default_id: str | None = None) -> Flow:
    """Turn a decoded Langflow document into a ``Flow``; raise ``InvalidFlow`` on any problem."""
    if "data" not in document and "nodes" in document:
        document = {"data": document}
    try:
        raw = msgspec.convert(document, _RawFlow)
    except msgspec.ValidationError as exc:
        raise InvalidFlow(f"unexpected flow structure: {exc}") from exc
    if raw.data is None:
        raise InvalidFlow("the flow has no 'data' with 'nodes' and 'edges'")

    problems: list[str] = []
    nodes = _parse_nodes(raw.data.nodes, problems)
    note_ids = {n.id for n in raw.data.nodes if _is_note(n)}
    edges = _parse_edges(raw.data.edges, {n.id for n in nodes}, note_ids, problems)
    if problems:
        raise InvalidFlow(problems)

    flow_id = raw.id or default_id or str(uuid.uuid4())
    return Flow(
        id=flow_id,
        name=raw.name or flow_id,
        description=raw.description or "",
        endpoint_name=raw.endpoint_name or None,
        webhook=bool(raw.webhook),
        mcp_enabled=bool(raw.mcp_enabled),
        access_type=(raw.access_type or "PRIVATE").upper(),
        folder_id=raw.folder_id,
        nodes=tuple(nodes),
        edges=tuple(edges),
        raw=document,
    )


def _is_note(node: _RawNode) -> bool:
    return node.type in _NOTE_TYPES or node.data.type in _NOTE_TYPES or node.data.type is None


def _parse_nodes(raw_nodes: list[_RawNode], problems: list[str]) -> list[Node]:
    nodes: list[Node] = []
    seen: set[str] = set()
    for raw in raw_nodes:
        if _is_note(raw):
            continue
        if raw.id in seen:
            problems.append(f"node '{raw.id}': duplicate node id")
            continue
        seen.add(raw.id)
        body = raw.data.node or _RawNodeBody()
        assert raw.data.type is not None  # _is_note() filtered the untyped ones
        fields = _parse_fields(raw.id, body.template, problems)
        tools_metadata = body.template.get("tools_metadata", {})
        tools_value = tools_metadata.get("value") if isinstance(tools_metadata, dict) else None
        nodes.append(
            Node(
                id=raw.id,
                type=raw.data.type,
                display_name=body.display_name or raw.data.display_name or raw.data.type,
                fields=fields,
                outputs=tuple(
                    Output(name=o.name, types=tuple(o.types), display_name=o.display_name or "")
                    for o in body.outputs
                ),
                tools_metadata=tuple(
                    t
                    for t in (tools_value if isinstance(tools_value, list) else [])
                    if isinstance(t, dict)
                ),
            )
        )
    return nodes


def _parse_fields(node_id: str, template: dict[str, Any], problems: list[str]) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for name, spec in template.items():
        if name in _NOT_FIELDS or not isinstance(spec, dict):
            continue
        input_types = spec.get("input_types") or ()
        if not isinstance(input_types, list | tuple):
            problems.append(f"node '{node_id}': field '{name}' has malformed input_types")
            continue
        fields[name] = Field(
            name=name,
            type=str(spec.get("type") or "str"),
            value=spec.get("value"),
            load_from_db=bool(spec.get("load_from_db", False)),
            is_list=bool(spec.get("list", False)),
            required=bool(spec.get("required", False)),
            show=bool(spec.get("show", True)),
            advanced=bool(spec.get("advanced", False)),
            display_name=str(spec.get("display_name") or name),
            input_types=tuple(str(t) for t in input_types),
        )
    return fields


def _handle_from_string(text: str | None) -> dict[str, Any]:
    # Older exports carry handles only as strings with 'œ' standing for '"'.
    if not text:
        return {}
    try:
        value = msgspec.json.decode(text.replace("œ", '"'))
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_edges(
    raw_edges: list[_RawEdge], node_ids: set[str], note_ids: set[str], problems: list[str]
) -> list[Edge]:
    edges: list[Edge] = []
    for raw in raw_edges:
        if raw.source in note_ids or raw.target in note_ids:
            continue
        source_handle = raw.data.sourceHandle if raw.data else None
        target_handle = raw.data.targetHandle if raw.data else None
        output = source_handle.name if source_handle else None
        field = target_handle.fieldName if target_handle else None
        output = output or _handle_from_string(raw.sourceHandle).get("name")
        field = field or _handle_from_string(raw.targetHandle).get("fieldName")
        # No field but a handle name: the edge feeds a loop output back (Loop's "item").
        loop_output = None if field else _loop_output(target_handle, raw.targetHandle)
        label = f"edge {raw.source} -> {raw.target}"
        missing = [n for n in (raw.source, raw.target) if n not in node_ids]
        if missing:
            problems.extend(f"{label}: node '{n}' does not exist" for n in missing)
            continue
        if not output or not (field or loop_output):
            problems.append(f"{label}: missing sourceHandle.name or targetHandle.fieldName")
            continue
        edges.append(
            Edge(
                source=raw.source,
                source_output=output,
                target=raw.target,
                target_field=field or loop_output or "",
                feedback=loop_output is not None,
            )
        )
    return edges


def _loop_output(handle: _Handle | None, text: str | None) -> str | None:
    name = handle.name if handle else None
    name = name or _handle_from_string(text).get("name")
    return name if isinstance(name, str) and name else None
