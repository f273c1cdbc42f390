"""Flow logic: If-Else routing (``ConditionalRouter``) and the Calculator."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flowserve.components.calculator import CalculationError, calculate, format_number
from flowserve.components.tools import COMPONENT_AS_TOOL, ToolComponent
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.run import INACTIVE
from flowserve.engine.types import Data, Message, to_text
from flowserve.errors import Invalid

# Regexes come from flows; bound their input so a bad pattern cannot stall a run long.
MAX_REGEX_INPUT = 100_000


def _number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError as exc:
        raise Invalid(f"'{text}' is not a number (numeric comparison)") from exc


def _regex(text: str, pattern: str, flags: int) -> bool:
    try:
        return re.search(pattern, text[:MAX_REGEX_INPUT], flags) is not None
    except re.error as exc:
        raise Invalid(f"invalid regular expression '{pattern}': {exc}") from exc


OPERATORS: dict[str, Callable[[str, str, int], bool]] = {
    "equals": lambda a, b, _: a == b,
    "not equals": lambda a, b, _: a != b,
    "contains": lambda a, b, _: b in a,
    "starts with": lambda a, b, _: a.startswith(b),
    "ends with": lambda a, b, _: a.endswith(b),
    "regex": _regex,
    "less than": lambda a, b, _: _number(a) < _number(b),
    "less than or equal": lambda a, b, _: _number(a) <= _number(b),
    "greater than": lambda a, b, _: _number(a) > _number(b),
    "greater than or equal": lambda a, b, _: _number(a) >= _number(b),
}


def evaluate_condition(text: str, operator: str, match: str, case_sensitive: bool) -> bool:
    check = OPERATORS.get(operator)
    if check is None:
        raise Invalid(f"unknown operator '{operator}' (one of: {', '.join(OPERATORS)})")
    flags = 0
    if not case_sensitive and operator != "regex":
        text, match = text.lower(), match.lower()
    elif not case_sensitive:
        flags = re.IGNORECASE
    return check(text, match, flags)


class ConditionalRouter(Component):
    type_name = "ConditionalRouter"
    display_name = "If-Else"
    description = "Routes an input message to a corresponding output based on text comparison."
    category = "flow_controls"
    icon = "split"
    inputs = (
        Input(
            "input_text",
            "str",
            "",
            "Text Input",
            "The primary text input for the operation.",
            input_types=("Message",),
        ),
        Input("operator", "str", "equals", "Operator", options=tuple(OPERATORS)),
        Input(
            "match_text",
            "str",
            "",
            "Match Text",
            "The text input to compare against.",
            input_types=("Message",),
        ),
        Input("case_sensitive", "bool", False, "Case Sensitive", advanced=True),
        Input(
            "true_case_message",
            "str",
            "",
            "Case True",
            "The message to pass if the condition is True.",
            input_types=("Message",),
            advanced=True,
        ),
        Input(
            "false_case_message",
            "str",
            "",
            "Case False",
            "The message to pass if the condition is False.",
            input_types=("Message",),
            advanced=True,
        ),
        Input("max_iterations", "int", 10, "Max Iterations", advanced=True),
        Input(
            "default_route",
            "str",
            "false_result",
            "Default Route",
            options=("true_result", "false_result"),
            advanced=True,
        ),
    )
    outputs = (
        Output("true_result", ("Message",), "True", "true_response"),
        Output("false_result", ("Message",), "False", "false_response"),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        text = to_text(params.get("input_text"))
        matched = evaluate_condition(
            text,
            str(params.get("operator") or "equals"),
            to_text(params.get("match_text")),
            bool(params.get("case_sensitive")),
        )
        taken = "true_result" if matched else "false_result"
        override = params.get("true_case_message" if matched else "false_case_message")
        value = override if override not in (None, "") else params.get("input_text")
        message = (
            value
            if isinstance(value, Message)
            else Message(
                text=to_text(value), session_id=ctx.run.session_id, flow_id=ctx.run.flow_id
            )
        )
        return {
            name: (message if name == taken else INACTIVE)
            for name in ("true_result", "false_result")
        }


class CalculatorComponent(ToolComponent):
    type_name = "CalculatorComponent"
    display_name = "Calculator"
    description = "Perform basic arithmetic operations on a given expression."
    category = "tools"
    icon = "calculator"
    tool_output = "result"
    tool_name = "evaluate_expression"
    tool_args = ("expression",)
    inputs = (
        Input(
            "expression",
            "str",
            "",
            "Expression",
            "The arithmetic expression to evaluate (e.g., '4*4*(33/22)+12-20').",
            input_types=("Message",),
        ),
    )
    outputs = (Output("result", ("Data", "JSON"), "Data", "evaluate_expression"), COMPONENT_AS_TOOL)

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        expression = to_text(params.get("expression"))
        try:
            result = format_number(calculate(expression))
        except CalculationError as exc:
            return {
                "result": Data({"error": f"Error: {exc}", "input": expression}, text_key="error")
            }
        ctx.log(f"Calculation result: {result}")  # as Langflow's Calculator logs it
        return {"result": Data({"result": result}, text_key="result")}
