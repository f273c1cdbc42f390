"""Small test-only components and flow builders shared by engine and API tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flowserve.components import BUILTIN, build_registry
from flowserve.engine import Component, Input, NodeContext, Output, Registry
from flowserve.engine.types import Message, to_text


class Gate(Component):
    """Passes its input through once the test opens the gate named by its ``gate`` field."""

    type_name = "TestGate"
    display_name = "Gate"
    inputs = (Input("input_value", "any", ""), Input("gate", "str", "default"))
    outputs = (Output("text", ("Message",)),)
    gates: dict[str, asyncio.Event] = {}
    entered: dict[str, asyncio.Event] = {}

    @classmethod
    def reset(cls) -> None:
        cls.gates.clear()
        cls.entered.clear()

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        name = params["gate"]
        self.entered.setdefault(name, asyncio.Event()).set()
        await self.gates.setdefault(name, asyncio.Event()).wait()
        return {"text": Message(text=to_text(params.get("input_value")))}


class Boom(Component):
    type_name = "TestBoom"
    display_name = "Boom"
    inputs = (Input("input_value", "any", ""),)
    outputs = (Output("text", ("Message",)),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        raise ValueError("the component blew up")


def make_registry() -> Registry:
    return build_registry((*BUILTIN, Gate, Boom), plugins=False)


def node(node_id: str, type_: str, **values: Any) -> dict[str, Any]:
    template = {name: {"type": "str", "value": value} for name, value in values.items()}
    return {
        "id": node_id,
        "type": "genericNode",
        "data": {
            "id": node_id,
            "type": type_,
            "node": {"template": template, "display_name": node_id},
        },
    }


def edge(source: str, output: str, target: str, field: str) -> dict[str, Any]:
    return {
        "source": source,
        "target": target,
        "data": {
            "sourceHandle": {"id": source, "name": output},
            "targetHandle": {"id": target, "fieldName": field},
        },
    }


def flow(
    flow_id: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {"id": flow_id, "name": flow_id, "data": {"nodes": nodes, "edges": edges}, **extra}
