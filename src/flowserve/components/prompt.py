"""Prompt: a template whose ``{variables}`` become inputs of the node.

Substitution is our own and purely textual: a variable is a plain name, looked
up in the node's parameters and rendered as text. Nothing in a template can
reach Python attributes, indexes or the environment (``str.format`` could).
With ``use_double_brackets`` the variables are ``{{name}}`` (mustache style)
and single braces are literal; otherwise ``{{`` and ``}}`` escape braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Message, to_text

_SINGLE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_DOUBLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\- ]*$")

# A template compiled to literal text and variable names, alternating.
Parts = tuple[tuple[str, bool], ...]


@lru_cache(maxsize=1024)
def parse_template(template: str, double_brackets: bool) -> Parts:
    """Split a template into (text, is_variable) parts; cached, templates repeat."""
    parts: list[tuple[str, bool]] = []
    pattern = _DOUBLE if double_brackets else _SINGLE
    position = 0
    for match in pattern.finditer(template):
        parts.append((template[position : match.start()], False))
        token = match.group(0)
        name = match.group(1)
        if not double_brackets and token in ("{{", "}}"):
            parts.append((token[0], False))
        elif name is not None and _NAME.match(name.strip()):
            parts.append((name.strip(), True))
        else:
            parts.append((token, False))
        position = match.end()
    parts.append((template[position:], False))
    return tuple(p for p in parts if p[0] or p[1])


def template_variables(template: str, double_brackets: bool) -> list[str]:
    seen: dict[str, None] = {}
    for text, is_var in parse_template(template, double_brackets):
        if is_var:
            seen.setdefault(text)
    return list(seen)


def render(template: str, double_brackets: bool, values: Mapping[str, Any]) -> str:
    return "".join(
        to_text(values.get(text)) if is_var else text
        for text, is_var in parse_template(template, double_brackets)
    )


class Prompt(Component):
    type_name = "Prompt"
    display_name = "Prompt Template"
    description = "Create a prompt template with dynamic variables."
    category = "models_and_agents"
    icon = "braces"
    inputs = (
        Input("template", "str", "", "Template", multiline=True),
        Input(
            "use_double_brackets",
            "bool",
            False,
            "Use Double Brackets",
            "Use {{variable}} syntax instead of {variable}.",
            advanced=True,
        ),
        Input("tool_placeholder", "str", "", "Tool Placeholder", advanced=True),
    )
    outputs = (Output("prompt", ("Message",), "Prompt", "build_prompt"),)
    quick = True

    def accepts_field(self, name: str) -> bool:
        if super().accepts_field(name):
            return True
        template = self.node.fields.get("template")
        double = self.node.fields.get("use_double_brackets")
        if template is None or not isinstance(template.value, str):
            return False
        return name in template_variables(template.value, bool(double and double.value))

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        template = params.get("template") or ""
        text = render(str(template), bool(params.get("use_double_brackets")), params)
        message = Message(text=text, session_id=ctx.run.session_id, flow_id=ctx.run.flow_id)
        return {"prompt": message}


class PromptTemplate(Prompt):
    """Langflow 1.13 renamed Prompt's type to its display name; the component is the same
    (same fields, ``prompt`` output, template rules)."""

    type_name = "Prompt Template"
