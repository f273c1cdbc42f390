"""Structured answers: a JSON Schema from Langflow's output-schema table, and JSON
pulled out of a model's reply and checked against it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

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
        except msgspec.DecodeError:
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
