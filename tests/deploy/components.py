"""Test components that work across processes, and flows built from them.

``FileGate`` holds a run until a file exists (the test creates it), so a test
can hold a run in a ``flowserve serve`` subprocess; ``Pause`` makes a run take
a little while, so runs are in flight when a replica is stopped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowserve.components import BUILTIN, build_registry
from flowserve.engine import Component, Input, NodeContext, Output, Registry
from flowserve.engine.types import Message, to_text
from tests.helpers import Gate, edge, flow, node


class FileGate(Component):
    type_name = "TestFileGate"
    display_name = "File gate"
    inputs = (Input("input_value", "any", ""), Input("path", "str", ""))
    outputs = (Output("text", ("Message",)),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        path = Path(params["path"])
        # Another process opens the gate: polling a file is the simplest signal across them.
        while not await asyncio.to_thread(path.exists):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return {"text": Message(text=to_text(params.get("input_value")))}


class Pause(Component):
    type_name = "TestPause"
    display_name = "Pause"
    inputs = (Input("input_value", "any", ""), Input("seconds", "float", 0.1))
    outputs = (Output("text", ("Message",)),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(float(params["seconds"]))
        return {"text": Message(text=to_text(params.get("input_value")))}


def make_registry() -> Registry:
    return build_registry((*BUILTIN, Gate, FileGate, Pause), plugins=False)


def through(flow_id: str, middle: dict[str, Any]) -> dict[str, Any]:
    """ChatInput -> ``middle`` -> ChatOutput: the user's message streams first."""
    middle_id = middle["id"]
    return flow(
        flow_id,
        [
            node("ChatInput-a", "ChatInput", input_value=""),
            middle,
            node("ChatOutput-c", "ChatOutput"),
        ],
        [
            edge("ChatInput-a", "message", middle_id, "input_value"),
            edge(middle_id, "text", "ChatOutput-c", "input_value"),
        ],
    )


def write_flow(directory: Path, document: dict[str, Any]) -> None:
    (directory / f"{document['id']}.json").write_text(json.dumps(document))
