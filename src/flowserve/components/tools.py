"""Components as agent tools, and the agent's built-in tools.

A node connected to an Agent's ``tools`` input through its
``component_as_tool`` output hands the agent ``Tool`` objects instead of
running. Each tool comes from an entry of the node's ``tools_metadata``
(name, description, args as JSON Schema properties) or, without one, from
the component's declared tool arguments. Calling a tool runs the component
with the node's parameters overlaid by the model's arguments; only declared
arguments can be overridden, so a model cannot change a key, a URL
allowlist or any other field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowserve.components.calculator import evaluate
from flowserve.engine.component import Component, NodeContext, NullSink, Output
from flowserve.engine.types import to_text
from flowserve.providers.model import ToolSpec

COMPONENT_AS_TOOL = Output("component_as_tool", ("Tool",), "Toolset", "to_toolkit")
# Bounds what one tool call can add to a model's context.
MAX_TOOL_RESULT_CHARS = 20_000


@dataclasses.dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    invoke: Callable[[dict[str, Any]], Awaitable[str]]

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


def object_schema(properties: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in properties.items():
        schema = dict(spec) if isinstance(spec, dict) else {"type": "string"}
        if "default" not in schema:
            required.append(name)
        props[name] = schema
    return {"type": "object", "properties": props, "required": required}


class ToolComponent(Component):
    """A component that can also serve as an agent tool (``component_as_tool``).

    Subclasses implement ``produce`` (their normal outputs) and name the output
    whose value answers a tool call, and the inputs a model may set.
    """

    tool_output: ClassVar[str]
    tool_name: ClassVar[str] = ""
    tool_description: ClassVar[str] = ""
    tool_args: ClassVar[tuple[str, ...]] = ()

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if COMPONENT_AS_TOOL.name in ctx.wanted:
            outputs[COMPONENT_AS_TOOL.name] = self.tools(ctx, params)
        if ctx.wanted - {COMPONENT_AS_TOOL.name}:
            outputs.update(await self.produce(ctx, params))
        return outputs

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def tools(self, ctx: NodeContext, params: Mapping[str, Any]) -> list[Tool]:
        entries = [t for t in self.node.tools_metadata if t.get("status", True) is not False]
        if not entries:
            entries = [self._default_metadata()]
        return [self._tool(ctx, params, entry) for entry in entries]

    def _default_metadata(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for name in self.tool_args:
            spec = self.input_named(name)
            schema: dict[str, Any] = {"type": "string"}
            if spec is not None:
                schema["description"] = spec.info or spec.display_name or name
                if spec.is_list:
                    schema = {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": schema["description"],
                    }
                if spec.options:
                    schema["enum"] = list(spec.options)
            args[name] = schema
        return {
            "name": self.tool_name or self.type_name,
            "description": self.tool_description or self.description,
            "args": args,
        }

    def _tool(self, ctx: NodeContext, params: Mapping[str, Any], entry: dict[str, Any]) -> Tool:
        args = entry.get("args") if isinstance(entry.get("args"), dict) else {}
        assert isinstance(args, dict)
        allowed = frozenset(args)
        base = dict(params)

        async def invoke(arguments: dict[str, Any]) -> str:
            merged = {**base, **{k: v for k, v in arguments.items() if k in allowed}}
            run = dataclasses.replace(ctx.run, sink=NullSink(), streaming=False, usage=None)
            tool_ctx = NodeContext(
                run=run,
                node_id=ctx.node_id,
                display_name=ctx.display_name,
                sources={},
                wanted=frozenset({self.tool_output}),
            )
            try:
                outputs = await self.produce(tool_ctx, merged)
            finally:
                ctx.run.add_usage(run.usage)
            return to_text(outputs.get(self.tool_output))[:MAX_TOOL_RESULT_CHARS]

        name = str(entry.get("name") or self.tool_name or self.type_name)
        description = str(entry.get("description") or self.tool_description or self.description)
        return Tool(
            name=_tool_name(name),
            description=description,
            parameters=object_schema(args),
            invoke=invoke,
        )


def _tool_name(name: str) -> str:
    """Provider APIs accept ``^[a-zA-Z0-9_-]{1,64}$`` as a function name."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    return cleaned[:64] or "tool"


async def _calculate(arguments: dict[str, Any]) -> str:
    return evaluate(str(arguments.get("expression", "")))


async def _current_date(arguments: dict[str, Any]) -> str:
    zone_name = str(arguments.get("timezone") or "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"Error: unknown timezone '{zone_name}'"
    now = datetime.now(UTC).astimezone(zone)
    return f"Current date and time in {zone_name}: {now:%Y-%m-%d %H:%M:%S %Z}"


CALCULATOR_TOOL = Tool(
    name="evaluate_expression",
    description="Evaluate a basic arithmetic expression (+, -, *, /, //, %, **, parentheses).",
    parameters={
        "type": "object",
        "required": ["expression"],
        "properties": {
            "expression": {
                "type": "string",
                "description": "The arithmetic expression, e.g. 4*4*(33/22)+12-20",
            }
        },
    },
    invoke=_calculate,
)

CURRENT_DATE_TOOL = Tool(
    name="get_current_date",
    description="Returns the current date and time in a selected timezone.",
    parameters={
        "type": "object",
        "required": [],
        "properties": {
            "timezone": {
                "type": "string",
                "default": "UTC",
                "description": "An IANA timezone name, e.g. UTC or Europe/Paris",
            }
        },
    },
    invoke=_current_date,
)
