"""Batch Run: one model call per row of a DataFrame, a bounded number at a time.

The model is chosen and called as the Language Model component does (``llm``):
the same model field, keys, endpoints, SSRF guard and token accounting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from flowserve.components.data import as_rows
from flowserve.components.llm import generate, resolve_model
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Data, to_text
from flowserve.errors import Invalid
from flowserve.providers import ChatMessage

# Rows in flight at once: enough to hide a provider's latency, few enough not to
# trip its rate limits or take all of a server's connections for one run.
MAX_CONCURRENT_ROWS = 8
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def row_as_toml(row: Mapping[str, Any]) -> str:
    """A row as Langflow sends it when no column is chosen: a TOML table per column."""
    lines: list[str] = []
    for column, value in row.items():
        key = column if _BARE_KEY.match(column) else msgspec.json.encode(column).decode()
        text = msgspec.json.encode(value if isinstance(value, str) else to_text(value)).decode()
        lines.extend((f"[{key}]", f"value = {text}", ""))
    return "\n".join(lines)


class BatchRunComponent(Component):
    type_name = "BatchRunComponent"
    display_name = "Batch Run"
    description = (
        "Runs an LLM on each row of a DataFrame column. If no column is specified, "
        "all columns are used."
    )
    category = "llm_operations"
    icon = "List"
    inputs = (
        Input(
            "model",
            "model",
            "",
            "Language Model",
            "Select your model provider",
            required=True,
            input_types=("LanguageModel",),
        ),
        Input("api_key", "secret", "", "API Key", "Overrides the provider key.", advanced=True),
        Input(
            "system_message",
            "str",
            "",
            "Instructions",
            "Multi-line system instruction for all rows in the DataFrame.",
            multiline=True,
            input_types=("Message",),
        ),
        Input("df", "any", None, "Table", required=True, input_types=("DataFrame", "Table")),
        Input(
            "column_name",
            "str",
            "",
            "Column Name",
            "The column to send as the message; empty: every column, formatted as TOML.",
            input_types=("Message",),
        ),
        Input(
            "output_column_name",
            "str",
            "model_response",
            "Output Column Name",
            advanced=True,
            input_types=("Message",),
        ),
        Input("enable_metadata", "bool", False, "Enable Metadata", advanced=True),
    )
    outputs = (Output("batch_results", ("Table", "DataFrame"), "LLM Results", "run_batch"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        rows = [row.data for row in as_rows(params.get("df"))]
        column = to_text(params.get("column_name")).strip()
        if column and rows and not any(column in row for row in rows):
            available = ", ".join(dict.fromkeys(k for row in rows for k in row))
            raise Invalid(
                f"Column '{column}' not found in the DataFrame. Available columns: {available}"
            )
        if not rows:
            return {"batch_results": []}
        settings = resolve_model(self, ctx, params)
        system = to_text(params.get("system_message")).strip()
        output_column = to_text(params.get("output_column_name")).strip() or "model_response"
        limit = asyncio.Semaphore(MAX_CONCURRENT_ROWS)

        async def answer(row: Mapping[str, Any]) -> str:
            text = to_text(row.get(column)) if column else row_as_toml(row)
            messages = [ChatMessage(role="system", content=system)] if system else []
            messages.append(ChatMessage(role="user", content=text))
            async with limit:
                generation = await generate(ctx, settings, settings.request(messages), stream=False)
            return generation.response.text

        # Not a TaskGroup: its ExceptionGroup would hide the provider's error (and its
        # status); the first failure is the run's, and the rows still running stop.
        tasks = [asyncio.create_task(answer(row)) for row in rows]
        try:
            replies = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        results: list[Data] = []
        for index, (row, reply) in enumerate(zip(rows, replies, strict=True)):
            out = {**row, output_column: reply, "batch_index": index}
            if params.get("enable_metadata"):
                out["metadata"] = {
                    "has_system_message": bool(system),
                    "input_length": len(to_text(row.get(column)) if column else row_as_toml(row)),
                    "response_length": len(reply),
                    "processing_status": "success",
                }
            results.append(Data(out, text_key=output_column))
        return {"batch_results": results}
