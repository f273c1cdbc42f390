"""Conversion of stored and tweaked field values to what a component expects.

Stored template values are converted leniently (Langflow writes ``""`` for an
unset number); tweaks are checked strictly, because a wrong type there is the
caller's mistake and deserves a 422 that says which field and why.
"""

from __future__ import annotations

from typing import Any

from flowserve.engine.component import Input

# Langflow template field types -> the JSON types a tweak may carry.
_STR_TYPES = frozenset({"str", "prompt", "tab", "query", "mustache", "file", "link", "password"})
_INT_TYPES = frozenset({"int"})
_NUMBER_TYPES = frozenset({"float", "slider"})
_DICT_TYPES = frozenset({"dict", "NestedDict", "nested_dict"})
_LIST_TYPES = frozenset({"table", "tools"})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def tweak_type_error(field_type: str, is_list: bool, spec: Input | None, value: Any) -> str | None:
    """Return why ``value`` cannot be a tweak for a field, or None when it can."""
    if value is None:
        return None
    kind = spec.kind if spec else None
    if kind in ("any", "message") or field_type in ("other", "Any", "any"):
        return None
    if kind == "model" or field_type == "model":
        ok = isinstance(value, str | list | dict)
        return None if ok else "expected a model name, a list of models or a model object"
    if kind == "bool" or field_type == "bool":
        return None if isinstance(value, bool) else "expected a boolean"
    if kind == "int" or field_type in _INT_TYPES:
        ok = _is_number(value) and float(value).is_integer()
        return None if ok else "expected an integer"
    if kind == "float" or field_type in _NUMBER_TYPES:
        return None if _is_number(value) else "expected a number"
    if kind == "dict" or field_type in _DICT_TYPES:
        return None if isinstance(value, dict) else "expected an object"
    if kind in ("list", "table") or field_type in _LIST_TYPES:
        return None if isinstance(value, list) else "expected a list"
    if kind in ("str", "secret") or field_type in _STR_TYPES:
        if isinstance(value, str):
            return None
        if (is_list or (spec is not None and spec.is_list)) and isinstance(value, list):
            ok = all(isinstance(item, str) for item in value)
            return None if ok else "expected a list of strings"
        return "expected a string"
    return None


def convert_stored(spec: Input, value: Any) -> Any:
    """Convert a value stored in a flow file; fall back to the input's default."""
    if value is None:
        return spec.default
    kind = spec.kind
    try:
        if kind == "int":
            return spec.default if value == "" else int(value)
        if kind == "float":
            return spec.default if value == "" else float(value)
        if kind == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("true", "1", "yes", "on")
            return bool(value)
        if kind in ("list", "table"):
            return value if isinstance(value, list) else spec.default
        if kind == "dict":
            return value if isinstance(value, dict) else spec.default
        if kind in ("str", "secret") and not isinstance(value, str) and not spec.is_list:
            return str(value)
    except (TypeError, ValueError):
        return spec.default
    return value


def convert_tweak(spec: Input | None, value: Any) -> Any:
    """Normalise a tweak that passed ``tweak_type_error`` (ints for int fields, ...)."""
    if spec is None or value is None:
        return value
    if spec.kind == "int":
        return int(value)
    if spec.kind == "float":
        return float(value)
    return value
