"""Langflow's Loop: hand a loop body one row at a time, collect what it feeds back.

The iteration itself is the engine's (engine/loops.py plans it, engine/run.py
runs it); this component says what the items are and what ``done`` holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowserve.components.data import as_rows
from flowserve.engine.component import Input, LoopingComponent, NodeContext, Output
from flowserve.engine.types import Data, Message, to_text


def fed_back_row(value: Any) -> Data:
    """What one iteration contributes to ``done``: one row, as Langflow's loop keeps
    the text of a Message and a Data as it is."""
    if isinstance(value, Data):
        return value
    if isinstance(value, dict):
        return Data(value)
    if isinstance(value, Message):
        return Data({"text": value.text})
    return Data({"text": to_text(value)})


class LoopComponent(LoopingComponent):
    type_name = "LoopComponent"
    display_name = "Loop"
    description = (
        "Iterates through Data or Message objects, processing items individually "
        "and aggregating results from loop inputs."
    )
    category = "flow_controls"
    icon = "infinity"
    inputs = (
        Input(
            "data",
            "any",
            None,
            "Inputs",
            "Data to iterate over. Accepts DataFrame, Table, Data, or Message.",
            input_types=("DataFrame", "Table", "Data", "Message"),
        ),
    )
    outputs = (
        Output("item", ("Data",), "Item", "item_output", allows_loop=True),
        Output("done", ("DataFrame", "Table"), "Done", "done_output"),
    )

    async def items(self, ctx: NodeContext, params: Mapping[str, Any]) -> list[Any]:
        return list(as_rows(params.get("data")))

    def finish(self, items: list[Any], results: list[Any]) -> dict[str, Any]:
        return {
            # After the loop, as Langflow's item_output: what was dispatched.
            "item": Data({"count": len(items), "items": [row.data for row in items]}),
            "done": [fed_back_row(value) for value in results],
        }
