"""The exported Python script stays inert data whatever a flow's name holds: the
name goes into the script's docstring, and must never close it."""

from __future__ import annotations

import ast
import uuid

import pytest

from flowserve.components import build_registry
from flowserve.engine import compile_flow
from flowserve.export import python_script
from flowserve.flowfile import parse_flow
from flowserve.store.base import FlowRecord
from tests.helpers import flow, node

HOSTILE_NAMES = [
    '""\nimport os; os.system("echo pwned")\n""',
    '"',
    '""',
    'x""',
    "\\",
    'ends with quote "',
    "line\nbreak\r\nand\ttab",
]


def _script(name: str) -> str:
    document = flow(str(uuid.uuid4()), [node("ChatInput-a", "ChatInput")], [])
    record = FlowRecord(id=document["id"], name=name, data=document["data"])
    graph = compile_flow(parse_flow({**document, "name": name}), build_registry())
    return python_script(record, graph)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_flow_name_cannot_close_the_scripts_docstring(name: str) -> None:
    module = ast.parse(_script(name))
    docstring = ast.get_docstring(module)
    assert docstring is not None
    assert docstring.startswith("Run the flow ")
    # Nothing but the docstring and the imports, assignments and functions of the template.
    kinds = {type(statement).__name__ for statement in module.body}
    assert kinds <= {"Expr", "ImportFrom", "Import", "Assign", "FunctionDef", "If"}
    expressions = [s for s in module.body if isinstance(s, ast.Expr)]
    assert len(expressions) == 1  # the docstring
    imported = {a.name for s in module.body if isinstance(s, ast.Import) for a in s.names}
    assert imported == {"argparse", "json", "sys", "flowserve"}  # the template's own
