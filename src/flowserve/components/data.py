"""Data handling: Parser, Type Convert, Split Text, Structured Output and Webhook.

Langflow's DataFrame is carried as a list of ``Data`` rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import msgspec

from flowserve.components.prompt import render
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Data, Message, to_text
from flowserve.errors import Invalid


def as_rows(value: Any) -> list[Data]:
    """Any edge value as a list of Data rows (Langflow's DataFrame)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [row for item in value for row in as_rows(item)]
    if isinstance(value, Data):
        return [value]
    if isinstance(value, Message):
        return [
            Data(
                {
                    "text": value.text,
                    "sender": value.sender,
                    "sender_name": value.sender_name,
                    "session_id": value.session_id,
                    "timestamp": value.timestamp,
                }
            )
        ]
    if isinstance(value, dict):
        return [Data(value)]
    return [Data({"text": to_text(value)})]


def _clean(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip())


class ParserComponent(Component):
    type_name = "ParserComponent"
    display_name = "Parser"
    description = "Extracts text using a template."
    category = "processing"
    icon = "braces"
    inputs = (
        Input(
            "input_data",
            "any",
            None,
            "JSON or Table",
            "Accepts a DataFrame, a Data object, or a list of Data objects.",
            input_types=("DataFrame", "Table", "Data", "JSON"),
        ),
        Input("mode", "str", "Parser", "Mode", options=("Parser", "Stringify")),
        Input("pattern", "str", "Text: {text}", "Template", multiline=True),
        Input("sep", "str", "\n", "Separator", advanced=True),
        Input("clean_data", "bool", True, "Clean Data", advanced=True),
    )
    outputs = (Output("parsed_text", ("Message",), "Parsed Text", "parse_combined_text"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        value = params.get("input_data")
        separator = str(params.get("sep") if params.get("sep") is not None else "\n")
        if params.get("mode") == "Stringify":
            items = value if isinstance(value, list) else [value]
            texts = [to_text(item) for item in items]
            text = "\n".join(_clean(t) if params.get("clean_data") else t for t in texts)
        else:
            pattern = str(params.get("pattern") or "")
            text = separator.join(render(pattern, False, row.data) for row in as_rows(value))
        return {
            "parsed_text": Message(
                text=text, session_id=ctx.run.session_id, flow_id=ctx.run.flow_id
            )
        }


class LegacyParser(ParserComponent):
    """The same component under the type name older exports use."""

    type_name = "parser"


class TypeConverterComponent(Component):
    type_name = "TypeConverterComponent"
    display_name = "Type Convert"
    description = "Convert between different types (Message, Data, DataFrame)."
    category = "processing"
    icon = "repeat"
    inputs = (
        Input(
            "input_data",
            "any",
            None,
            "Input",
            "Accepts Message, Data or DataFrame.",
            input_types=("Message", "Data", "JSON", "DataFrame", "Table"),
        ),
        Input(
            "output_type", "str", "Message", "Output Type", options=("Message", "Data", "DataFrame")
        ),
        Input(
            "auto_parse",
            "bool",
            False,
            "Auto Parse",
            "Parse JSON text into structured data.",
            advanced=True,
        ),
    )
    outputs = (
        Output("message_output", ("Message",), "Message Output", "convert_to_message"),
        Output("data_output", ("Data", "JSON"), "Data Output", "convert_to_data"),
        Output(
            "dataframe_output", ("DataFrame", "Table"), "DataFrame Output", "convert_to_dataframe"
        ),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        value = params.get("input_data")
        if params.get("auto_parse") and isinstance(value, str | Message):
            with contextlib.suppress(msgspec.DecodeError, UnicodeError):
                value = msgspec.json.decode(to_text(value))
        outputs: dict[str, Any] = {}
        if "message_output" in ctx.wanted:
            text = value.get_text() or to_text(value) if isinstance(value, Data) else to_text(value)
            outputs["message_output"] = Message(
                text=text, session_id=ctx.run.session_id, flow_id=ctx.run.flow_id
            )
        if "data_output" in ctx.wanted:
            rows = as_rows(value)
            outputs["data_output"] = (
                rows[0] if len(rows) == 1 else Data({"results": [r.data for r in rows]})
            )
        if "dataframe_output" in ctx.wanted:
            outputs["dataframe_output"] = as_rows(value)
        return outputs


def split_text(text: str, separator: str, size: int, overlap: int, keep: str) -> list[str]:
    """Split on ``separator`` and pack the pieces into chunks of at most ``size``
    characters (a piece longer than that is cut), each starting with up to
    ``overlap`` characters of pieces from the end of the previous chunk."""
    if size <= 0:
        raise Invalid("chunk_size must be positive")
    overlap = max(0, min(overlap, size - 1))
    pieces = _pieces(text, separator, keep)
    joiner = "" if keep in ("Start", "End") else separator
    chunks: list[str] = []
    current: list[str] = []
    for piece in (p for raw in pieces for p in _cut(raw, size)):
        if current and len(joiner.join([*current, piece])) > size:
            chunks.append(joiner.join(current))
            while current and (
                len(joiner.join(current)) > overlap or len(joiner.join([*current, piece])) > size
            ):
                current.pop(0)
        current.append(piece)
    if current:
        chunks.append(joiner.join(current))
    return [c for c in chunks if c.strip()]


def _pieces(text: str, separator: str, keep: str) -> list[str]:
    if not separator:
        return list(text)
    parts = text.split(separator)
    if keep == "Start":
        return [parts[0]] + [separator + p for p in parts[1:]]
    if keep == "End":
        return [p + separator for p in parts[:-1]] + [parts[-1]]
    return parts


def _cut(piece: str, size: int) -> list[str]:
    return [piece[i : i + size] for i in range(0, len(piece), size)] or [""]


class SplitText(Component):
    type_name = "SplitText"
    display_name = "Split Text"
    description = "Split text into chunks based on specified criteria."
    category = "processing"
    icon = "scissors-line-dashed"
    inputs = (
        Input(
            "data_inputs",
            "any",
            None,
            "Input Documents",
            input_types=("Data", "DataFrame", "Message"),
        ),
        Input("chunk_overlap", "int", 200, "Chunk Overlap"),
        Input("chunk_size", "int", 1000, "Chunk Size"),
        Input("separator", "str", "\n", "Separator"),
        Input("text_key", "str", "text", "Text Key", advanced=True),
        Input(
            "keep_separator",
            "str",
            "False",
            "Keep Separator",
            options=("False", "True", "Start", "End"),
            advanced=True,
        ),
    )
    outputs = (
        Output("dataframe", ("DataFrame", "Table"), "Chunks", "split_text"),
        Output("chunks", ("Data",), "Chunks (Data)", "split_text_base"),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        key = str(params.get("text_key") or "text")
        separator = (
            str(params.get("separator") if params.get("separator") is not None else "\n")
            .replace("\\n", "\n")
            .replace("\\t", "\t")
        )
        keep = str(params.get("keep_separator") or "False")
        keep = "Start" if keep == "True" else keep
        rows: list[Data] = []
        for source in as_rows(params.get("data_inputs")):
            text = source.data.get(key)
            if not isinstance(text, str):
                continue
            metadata = {k: v for k, v in source.data.items() if k != key}
            for chunk in split_text(
                text,
                separator,
                int(params.get("chunk_size") or 1000),
                int(params.get("chunk_overlap") or 0),
                keep,
            ):
                rows.append(Data({**metadata, key: chunk}, text_key=key))
        return {name: rows for name in ("dataframe", "chunks") if name in ctx.wanted}


class Webhook(Component):
    """The body of a webhook call, as Data. The runner puts the raw request body in
    the ``data`` field; a body that is not a JSON object arrives as ``{"payload": raw}``."""

    type_name = "Webhook"
    display_name = "Webhook"
    description = "Defines a webhook trigger for the flow."
    category = "input_output"
    icon = "webhook"
    inputs = (
        Input(
            "data",
            "str",
            "",
            "Payload",
            "Receives a payload from external systems via HTTP POST.",
            input_types=("Message",),
            multiline=True,
            advanced=True,
        ),
        Input("curl", "str", "", "cURL", advanced=True),
        Input("endpoint", "str", "", "Endpoint", advanced=True),
    )
    outputs = (Output("output_data", ("JSON", "Data"), "Data", "build_data"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        raw = to_text(params.get("data"))
        if not raw.strip():
            return {"output_data": Data({})}
        try:
            body = msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeError):
            body = None
        if not isinstance(body, dict):
            body = {"payload": raw}
        return {"output_data": Data(body)}
