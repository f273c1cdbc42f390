"""The code generators behind snippets and exports write valid literals for any JSON value."""

from __future__ import annotations

import ast
import json

import pytest

from flowserve.snippets import python_literal
from tests.conftest import FLOWS

AWKWARD = [
    "plain",
    'it\'s "both" quotes',
    "back\\slash and \\n literal",
    "line\nbreak\ttab",
    "ünïcödé 😀 \u2028 separator",
    "{braces} and %s and $HOME",
    "",
]


@pytest.mark.parametrize(
    "value",
    [
        *AWKWARD,
        {"nested": {"list": [1, 2.5, True, False, None, "x"], "empty": {}, "none": []}},
        [{"a": s} for s in AWKWARD],
        {s: s for s in AWKWARD},
        ["short", "list"],
        ["a long list of strings that cannot stay on one line"] * 3,
    ],
)
def test_python_literal_reads_back_as_the_same_value(value: object) -> None:
    assert ast.literal_eval(python_literal(value)) == value


def test_python_literal_of_a_whole_flow_is_the_flow() -> None:
    document = json.loads((FLOWS / "basic-prompting.json").read_text())
    assert ast.literal_eval(python_literal(document)) == document
