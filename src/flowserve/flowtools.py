"""Flows as tools: which stored flows an AI client may call, under what name and schema.

Every flow with ``mcp_enabled`` is a tool. Its name is Langflow's
``action_name`` when the document has one, else the flow's endpoint name, else
a slug of its name; names that collide get a suffix from the flow id, decided
by id order so every instance names them alike. The description is
``action_description``, else the flow's description.

Arguments: ``input_value`` (the chat input), an optional ``session_id``, and
the fields the flow declares tweakable in an ``mcp_inputs`` list in its graph
(the document's ``data``, beside ``nodes`` and ``edges``; that is what the
flow store keeps), each ``"<node id>.<field>"`` or ``{"node": ..., "field":
..., "name": ..., "description": ...}``. Those become tweaks of that node's
field. ``action_name`` / ``action_description`` are read from the graph too.
Nothing here knows about MCP's wire format or HTTP; ``api/mcp.py`` does.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from flowserve.errors import FlowserveError, InvalidRunInput
from flowserve.flowfile import parse_flow
from flowserve.flowfile.model import Field, Node
from flowserve.results import RunResponse, main_text
from flowserve.runner import RunRequest
from flowserve.store.base import FlowRecord, FlowStore

log = structlog.get_logger(__name__)

# What MCP clients accept in a tool name (Claude Desktop caps it at 64 characters).
MAX_TOOL_NAME = 64
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_PAGE = 500
_JSON_BLOCK = re.compile(r"```json\n(.*)\n```", re.DOTALL)

_JSON_TYPES = {
    "str": "string",
    "prompt": "string",
    "text": "string",
    "code": "string",
    "int": "integer",
    "float": "number",
    "slider": "number",
    "bool": "boolean",
    "dict": "object",
    "NestedDict": "object",
}
_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}
_RESERVED = frozenset({"input_value", "session_id"})


@dataclass(frozen=True, slots=True)
class TweakInput:
    """A declared tweakable field: argument ``name`` sets ``field`` of node ``node``."""

    name: str
    node: str
    field: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FlowTool:
    name: str
    description: str
    flow_id: str
    version: int
    tweak_inputs: tuple[TweakInput, ...] = ()
    input_schema: dict[str, Any] = field(default_factory=dict)


def slug(text: str) -> str:
    """A flow name as a tool name: lowercase words joined by ``_``."""
    return _NOT_NAME.sub("_", text.strip().lower()).strip("_")


def base_name(record: FlowRecord) -> str:
    action = record.data.get("action_name")
    if isinstance(action, str) and slug(action):
        name = _NOT_NAME.sub("_", action.strip()).strip("_")
    elif record.endpoint_name:
        name = _NOT_NAME.sub("_", record.endpoint_name)
    else:
        name = slug(record.name) or f"flow_{record.id[:8]}"
    return name[:MAX_TOOL_NAME]


def description(record: FlowRecord) -> str:
    action = record.data.get("action_description")
    if isinstance(action, str) and action.strip():
        return action.strip()
    if record.description.strip():
        return record.description.strip()
    return f"Runs the flow '{record.name}' and answers with its output."


async def enabled_flows(store: FlowStore, project_id: str | None = None) -> list[FlowRecord]:
    """Every ``mcp_enabled`` flow (of one project when given), read page by page."""
    found: list[FlowRecord] = []
    offset = 0
    while True:
        page = await store.list(limit=_PAGE, offset=offset)
        found.extend(
            r for r in page if r.mcp_enabled and (project_id is None or r.folder_id == project_id)
        )
        if len(page) < _PAGE:
            return found
        offset += _PAGE


def fingerprint(records: list[FlowRecord]) -> frozenset[tuple[str, int, str | None]]:
    """What changes whenever any tool's name, schema or behaviour may have changed."""
    return frozenset((r.id, r.version, r.folder_id) for r in records)


def build_tools(records: list[FlowRecord]) -> list[FlowTool]:
    """The tools for these flows, with unique names, sorted by name."""
    by_name: dict[str, list[FlowRecord]] = {}
    for record in records:
        by_name.setdefault(base_name(record), []).append(record)
    tools: list[FlowTool] = []
    for name, group in by_name.items():
        group.sort(key=lambda r: r.id)
        for index, record in enumerate(group):
            unique = name if index == 0 else f"{name[: MAX_TOOL_NAME - 9]}_{record.id[:8]}"
            tools.append(make_tool(unique, record))
    tools.sort(key=lambda t: t.name)
    return tools


def make_tool(name: str, record: FlowRecord) -> FlowTool:
    tweak_inputs = declared_inputs(record)
    properties: dict[str, Any] = {
        "input_value": {
            "type": "string",
            "description": "The input sent to the flow (its chat or text input).",
        },
        "session_id": {
            "type": "string",
            "description": "Continue a conversation: calls with the same session id share the "
            "flow's memory. Without it every call starts a new session.",
        },
    }
    for tweak in tweak_inputs:
        properties[tweak.name] = tweak.schema
    schema = {
        "type": "object",
        "properties": properties,
        "required": ["input_value"],
        "additionalProperties": False,
    }
    return FlowTool(
        name=name,
        description=description(record),
        flow_id=record.id,
        version=record.version,
        tweak_inputs=tweak_inputs,
        input_schema=schema,
    )


def declared_inputs(record: FlowRecord) -> tuple[TweakInput, ...]:
    """The flow's ``mcp_inputs``; a declaration naming no field is logged and left out."""
    declared = record.data.get("mcp_inputs")
    if not isinstance(declared, list) or not declared:
        return ()
    try:
        flow = parse_flow(record.data, default_id=record.id)
    except FlowserveError:
        return ()
    inputs: list[TweakInput] = []
    for entry in declared:
        tweak = _declared_input(entry, flow.nodes, {t.name for t in inputs})
        if tweak is None:
            log.warning("mcp_input_ignored", flow_id=record.id, entry=entry)
            continue
        inputs.append(tweak)
    return tuple(inputs)


def _declared_input(entry: Any, nodes: tuple[Node, ...], taken: set[str]) -> TweakInput | None:
    if isinstance(entry, str):
        node_ref, _, field_ref = entry.rpartition(".")
        entry = {"node": node_ref, "field": field_ref}
    if not isinstance(entry, dict):
        return None
    node_id, field_name = entry.get("node"), entry.get("field")
    node = next((n for n in nodes if n.id == node_id), None)
    if node is None or not isinstance(field_name, str) or field_name not in node.fields:
        return None
    name = entry.get("name") or field_name
    if not isinstance(name, str) or name in _RESERVED or name in taken:
        name = f"{node.id}_{field_name}"
    name = _NOT_NAME.sub("_", name)
    if name in _RESERVED or name in taken:
        return None
    spec = node.fields[field_name]
    text = entry.get("description")
    schema = _field_schema(spec, text if isinstance(text, str) else "")
    return TweakInput(name=name, node=node.id, field=field_name, schema=schema)


def _field_schema(spec: Field, text: str) -> dict[str, Any]:
    json_type = _JSON_TYPES.get(spec.type, "string")
    schema: dict[str, Any] = (
        {"type": "array", "items": {"type": json_type}} if spec.is_list else {"type": json_type}
    )
    schema["description"] = text or spec.display_name or spec.name
    if isinstance(spec.value, str | int | float | bool) and _matches(spec.value, schema["type"]):
        schema["default"] = spec.value
    return schema


def _matches(value: Any, json_type: str) -> bool:
    if isinstance(value, bool) and json_type in ("integer", "number"):
        return False
    return isinstance(value, _PYTHON_TYPES.get(json_type, object))


def run_request(tool: FlowTool, arguments: Mapping[str, Any] | None) -> RunRequest:
    """The run a tool call asks for; wrong or unknown arguments are an ``InvalidRunInput``."""
    args = dict(arguments or {})
    input_value = args.pop("input_value", None)
    if not isinstance(input_value, str):
        raise InvalidRunInput("Argument 'input_value' is required and must be a string")
    session_id = args.pop("session_id", None)
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise InvalidRunInput("Argument 'session_id' must be a non-empty string")
    tweaks: dict[str, dict[str, Any]] = {}
    for tweak in tool.tweak_inputs:
        if tweak.name not in args:
            continue
        value = args.pop(tweak.name)
        if not _matches(value, tweak.schema["type"]):
            raise InvalidRunInput(f"Argument '{tweak.name}' must be of type {tweak.schema['type']}")
        tweaks.setdefault(tweak.node, {})[tweak.field] = value
    if args:
        names = ", ".join(sorted(args))
        raise InvalidRunInput(f"Unknown argument(s) for tool '{tool.name}': {names}")
    return RunRequest(
        input_value=input_value,
        input_type="any",
        output_type="any",
        tweaks=tweaks or None,
        # A tool call without a session must not share memory with other callers.
        session_id=session_id or str(uuid.uuid4()),
    )


@dataclass(frozen=True, slots=True)
class ToolOutput:
    text: str
    structured: dict[str, Any] | None


def tool_output(response: RunResponse) -> ToolOutput:
    """The text a tool call answers with, and the output as an object when it is Data."""
    text = main_text(response)
    structured = _structured(response, text)
    if structured is not None and not text:
        text = msgspec.json.encode(structured).decode()
    return ToolOutput(text=text, structured=structured)


def _structured(response: RunResponse, text: str) -> dict[str, Any] | None:
    for outputs in response.outputs:
        for result in outputs.outputs:
            for value in result.results.values():
                # Data renders as {"data": {...}, "text_key": ...}; a Message has more keys.
                if isinstance(value, dict) and set(value) == {"data", "text_key"}:
                    data = value["data"]
                    return data if isinstance(data, dict) else None
    # A chat output given Data shows it as a ```json block (Langflow's rendering).
    block = _JSON_BLOCK.fullmatch(text.strip())
    if block is None:
        return None
    try:
        decoded = msgspec.json.decode(block.group(1))
    except msgspec.DecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None
