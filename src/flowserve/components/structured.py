"""Structured answers: a JSON Schema from Langflow's output-schema table, JSON
pulled out of a model's reply and checked against it, and the Structured
Output component that asks a model for it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from flowserve.components.llm import ModelSettings, generate, resolve_model
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Data, to_text
from flowserve.errors import Invalid, UpstreamError
from flowserve.providers import ChatMessage

_TYPES = {
    "str": "string",
    "string": "string",
    "text": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "dict": "object",
    "object": "object",
    "json": "object",
    "list": "array",
    "array": "array",
}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def schema_from_table(rows: Iterable[Any]) -> dict[str, Any]:
    """Rows ``{name, type, description, multiple}`` -> a JSON Schema object."""
    properties: dict[str, Any] = {}
    for row in rows:
        if not isinstance(row, dict) or not str(row.get("name") or "").strip():
            continue
        name = str(row["name"]).strip()
        kind = _TYPES.get(str(row.get("type") or "str").lower(), "string")
        field: dict[str, Any] = {"type": kind}
        if row.get("description"):
            field["description"] = str(row["description"])
        if _truthy(row.get("multiple")):
            field = {"type": "array", "items": field}
        properties[name] = field
    return {"type": "object", "properties": properties, "required": list(properties)}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def extract_json(text: str) -> Any:
    """The JSON value in a reply: the whole text, a fenced block, or the outermost
    object/array; raises ``ValueError`` when there is none."""
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return msgspec.json.decode(candidate)
        except (msgspec.DecodeError, UnicodeError):
            continue
    raise ValueError("the model's reply contains no JSON")


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Problems of ``value`` against the subset of JSON Schema ``schema_from_table`` makes."""
    kind = schema.get("type")
    expected = _PY_TYPES.get(str(kind))
    if expected is not None:
        wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
        if not isinstance(value, expected) or wrong_bool:
            return [f"{path}: expected {kind}, got {type(value).__name__}"]
    problems: list[str] = []
    if kind == "object" and isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}.{name}: missing")
        for name, sub in (schema.get("properties") or {}).items():
            if name in value and value[name] is not None:
                problems.extend(validate(value[name], sub, f"{path}.{name}"))
    if kind == "array" and isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems.extend(validate(item, schema["items"], f"{path}[{i}]"))
    return problems


class StructuredOutput(Component):
    type_name = "StructuredOutput"
    display_name = "Structured Output"
    description = "Uses a language model to generate structured data from text."
    category = "models_and_agents"
    icon = "braces"
    inputs = (
        Input("model", "model", "", "Language Model", input_types=("LanguageModel",)),
        Input("api_key", "secret", "", "API Key", advanced=True),
        Input("base_url", "str", "", "Base URL", advanced=True),
        Input("input_value", "str", "", "Input Message", input_types=("Message",)),
        Input(
            "system_prompt",
            "str",
            "You are an AI that extracts structured JSON objects "
            "from unstructured text. Answer with JSON only.",
            "Format Instructions",
            multiline=True,
        ),
        Input("schema_name", "str", "", "Schema Name", advanced=True),
        Input("output_schema", "table", [], "Output Schema"),
    )
    outputs = (
        Output(
            "structured_output", ("Data", "JSON"), "Structured Output", "build_structured_output"
        ),
        Output(
            "dataframe_output",
            ("DataFrame", "Table"),
            "Structured Output (Table)",
            "build_structured_dataframe",
        ),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        settings = resolve_model(self, ctx, params)
        schema = schema_from_table(params.get("output_schema") or [])
        if not schema["properties"]:
            raise Invalid("the output schema is empty: add at least one field")
        objects = await _extract(ctx, settings, params, schema)
        rows = [Data(obj) for obj in objects]
        outputs: dict[str, Any] = {}
        if "structured_output" in ctx.wanted:
            outputs["structured_output"] = rows[0] if len(rows) == 1 else Data({"results": objects})
        if "dataframe_output" in ctx.wanted:
            outputs["dataframe_output"] = rows
        return outputs


async def _extract(
    ctx: NodeContext, settings: ModelSettings, params: Mapping[str, Any], schema: dict[str, Any]
) -> list[dict[str, Any]]:
    """Ask for JSON matching ``schema``; one retry that shows the model its mistakes."""
    instructions = (
        to_text(params.get("system_prompt")) + "\nAnswer with a JSON object "
        "(or a JSON array of objects) matching this JSON Schema:\n"
        + msgspec.json.encode(schema).decode()
    )
    messages = [
        ChatMessage(role="system", content=instructions),
        ChatMessage(role="user", content=to_text(params.get("input_value"))),
    ]
    problems: list[str] = []
    for _ in range(2):
        reply = (
            await generate(ctx, settings, settings.request(messages, json_mode=True), stream=False)
        ).response
        try:
            value = extract_json(reply.text)
        except ValueError as exc:
            problems = [str(exc)]
        else:
            if isinstance(value, dict) and isinstance(value.get("objects"), list):
                value = value["objects"]
            objects = value if isinstance(value, list) else [value]
            problems = [p for obj in objects for p in validate(obj, schema)]
            if not problems:
                return [obj for obj in objects if isinstance(obj, dict)]
        messages += [
            ChatMessage(role="assistant", content=reply.text),
            ChatMessage(
                role="user",
                content="That answer is not valid: "
                + "; ".join(problems)
                + ". Answer again with JSON only.",
            ),
        ]
    raise UpstreamError(
        "the model's answer does not match the output schema: " + "; ".join(problems[:5])
    )
