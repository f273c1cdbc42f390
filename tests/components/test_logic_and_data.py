"""If-Else, Calculator, Parser, Type Convert, Split Text, Structured Output, Webhook."""

from __future__ import annotations

from typing import Any

import pytest

from flowserve.components.calculator import evaluate
from flowserve.components.data import (
    ParserComponent,
    SplitText,
    TypeConverterComponent,
    split_text,
)
from flowserve.components.logic import CalculatorComponent
from flowserve.components.registry import BUILTIN, build_registry
from flowserve.components.structured import StructuredOutput
from flowserve.engine import compile_flow
from flowserve.engine.types import Data, Message
from flowserve.errors import Invalid, UpstreamError
from flowserve.flowfile.parser import parse_flow
from tests.fakes.flows import load_graph, make_node, node_context, run_graph
from tests.fakes.openai_server import FakeOpenAI

# --- Webhook ---------------------------------------------------------------------------


async def test_webhook_echo_renders_the_json_body() -> None:
    graph = load_graph("webhook-echo.json")
    run = await run_graph(graph, tweaks={"Webhook-Xq3kP": {"data": '{"order": 42, "ok": true}'}})
    assert run.output_text() == '```json\n{\n    "order": 42,\n    "ok": true\n}\n```'


@pytest.mark.parametrize("body", ["plain text body", "[1, 2]", "{broken"])
async def test_webhook_body_that_is_not_a_json_object_becomes_payload(body: str) -> None:
    graph = load_graph("webhook-echo.json")
    run = await run_graph(graph, tweaks={"Webhook-Xq3kP": {"data": body}})
    node = run.result.nodes["Webhook-Xq3kP"]
    assert node.outputs["output_data"].data == {"payload": body}


# --- If-Else through the engine ---------------------------------------------------------


def _router_flow(operator: str, match: str) -> dict[str, Any]:
    def node(node_id: str, type_name: str, **fields: Any) -> dict[str, Any]:
        template = {k: {"type": "str", "value": v} for k, v in fields.items()}
        return {
            "id": node_id,
            "data": {
                "id": node_id,
                "type": type_name,
                "node": {"display_name": node_id, "template": template},
            },
        }

    def edge(source: str, output: str, target: str, field: str) -> dict[str, Any]:
        return {
            "source": source,
            "target": target,
            "data": {"sourceHandle": {"name": output}, "targetHandle": {"fieldName": field}},
        }

    return {
        "id": "router-flow",
        "name": "router",
        "data": {
            "nodes": [
                node("in", "ChatInput"),
                node("if", "ConditionalRouter", operator=operator, match_text=match),
                node("yes", "ChatOutput", sender_name="yes"),
                node("no", "ChatOutput", sender_name="no"),
            ],
            "edges": [
                edge("in", "message", "if", "input_text"),
                edge("if", "true_result", "yes", "input_value"),
                edge("if", "false_result", "no", "input_value"),
            ],
        },
    }


@pytest.mark.parametrize(
    ("operator", "match", "text", "taken"),
    [
        ("contains", "refund", "I want a REFUND now", "yes"),
        ("equals", "hello", "goodbye", "no"),
        ("regex", r"^\d{3}$", "123", "yes"),
        ("greater than", "10", "9.5", "no"),
        ("starts with", "hi", "Hi there", "yes"),
    ],
)
async def test_if_else_runs_only_the_taken_branch(
    operator: str, match: str, text: str, taken: str
) -> None:
    graph = compile_flow(
        parse_flow(_router_flow(operator, match)), build_registry(BUILTIN, plugins=False)
    )
    run = await run_graph(graph, input_value=text)
    skipped = {"yes", "no"} - {taken}
    assert [m.text for m in run.result.nodes[taken].messages] == [text]
    assert all(run.result.nodes[n].skipped for n in skipped)


# --- Calculator ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("4*4*(33/22)+12-20", "16"),
        ("2**10", "1024"),
        ("7 // 2", "3"),
        ("-3 % 5", "2"),
        ("1/3", "0.333333"),
        ("1/0", "Error: division by zero"),
        ("__import__('os').system('id')", "Error: unsupported element: Call"),
        ("9**9**9", "Error: exponent too large"),
        ("a + 1", "Error: unsupported element: Name"),
        ("", "Error: the expression is empty"),
        ("2 +", "Error: invalid syntax"),
        ("True + 1", "Error: booleans are not numbers here"),
    ],
)
def test_calculator_is_safe_arithmetic(expression: str, result: str) -> None:
    assert evaluate(expression) == result


async def test_calculator_component_outputs_data() -> None:
    component = CalculatorComponent(make_node("CalculatorComponent"))
    out = await component.run(node_context(wanted={"result"}), {"expression": "6*7"})
    assert out["result"].data == {"result": "42"}


# --- Parser / Type Convert / Split Text ---------------------------------------------------


async def test_parser_formats_each_row_with_the_template() -> None:
    component = ParserComponent(make_node("ParserComponent"))
    rows = [Data({"name": "Ada", "age": 36}), Data({"name": "Alan"})]
    out = await component.run(
        node_context(wanted={"parsed_text"}),
        {"input_data": rows, "mode": "Parser", "pattern": "{name} ({age})", "sep": " | "},
    )
    assert out["parsed_text"].text == "Ada (36) | Alan ()"


async def test_parser_stringify_mode_renders_data() -> None:
    component = ParserComponent(make_node("ParserComponent"))
    out = await component.run(
        node_context(wanted={"parsed_text"}),
        {"input_data": Data({"a": 1}), "mode": "Stringify", "clean_data": True},
    )
    assert out["parsed_text"].text == '```json\n{\n    "a": 1\n}\n```'


async def test_type_converter_parses_json_messages() -> None:
    component = TypeConverterComponent(make_node("TypeConverterComponent"))
    ctx = node_context(wanted={"data_output", "dataframe_output", "message_output"})
    out = await component.run(
        ctx, {"input_data": Message(text='{"city": "Paris"}'), "auto_parse": True}
    )
    assert out["data_output"].data == {"city": "Paris"}
    assert [r.data for r in out["dataframe_output"]] == [{"city": "Paris"}]


def test_split_text_packs_pieces_with_overlap() -> None:
    text = "\n".join(f"line {i}" for i in range(6))  # each piece is 6 characters
    assert split_text(text, "\n", 13, 6, "False") == [
        "line 0\nline 1",
        "line 1\nline 2",
        "line 2\nline 3",
        "line 3\nline 4",
        "line 4\nline 5",
    ]
    assert split_text("abcdefghij", "\n", 4, 0, "False") == ["abcd", "efgh", "ij"]


async def test_split_text_component_keeps_metadata() -> None:
    component = SplitText(make_node("SplitText"))
    out = await component.run(
        node_context(wanted={"dataframe"}),
        {
            "data_inputs": [Data({"text": "a b\nc d", "source": "doc1"})],
            "chunk_size": 3,
            "chunk_overlap": 0,
            "separator": "\\n",
            "text_key": "text",
        },
    )
    assert [r.data for r in out["dataframe"]] == [
        {"source": "doc1", "text": "a b"},
        {"source": "doc1", "text": "c d"},
    ]


async def test_split_text_rejects_nonpositive_chunk_size() -> None:
    with pytest.raises(Invalid, match="chunk_size"):
        split_text("abc", "\n", 0, 0, "False")


# --- Structured Output -------------------------------------------------------------------

SCHEMA = [
    {"name": "name", "type": "str", "description": "person name", "multiple": False},
    {"name": "age", "type": "int", "description": "age", "multiple": "False"},
]


async def test_structured_output_validates_the_model_json(fake_openai: FakeOpenAI) -> None:
    component = StructuredOutput(make_node("StructuredOutput"))
    ctx = node_context(
        wanted={"structured_output"},
        variables={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_openai.base_url},
    )
    out = await component.run(
        ctx,
        {
            "model": "gpt-4o-mini",
            "output_schema": SCHEMA,
            "input_value": '{"name": "Ada", "age": 36}',
            "system_prompt": "Extract.",
        },
    )
    assert out["structured_output"].data == {"name": "Ada", "age": 36}
    sent = fake_openai.requests[0]
    assert sent["response_format"] == {"type": "json_object"}
    assert '"age":{"type":"integer"' in sent["messages"][0]["content"]


async def test_structured_output_that_never_matches_is_an_upstream_error(
    fake_openai: FakeOpenAI,
) -> None:
    component = StructuredOutput(make_node("StructuredOutput"))
    ctx = node_context(
        wanted={"structured_output"},
        variables={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_openai.base_url},
    )
    with pytest.raises(UpstreamError, match="does not match the output schema"):
        await component.run(
            ctx,
            {
                "model": "gpt-4o-mini",
                "output_schema": SCHEMA,
                "input_value": '{"name": "Ada"}',
                "system_prompt": "x",
            },
        )
    assert len(fake_openai.requests) == 2  # one retry with the problems shown
    assert "$.age: missing" in fake_openai.requests[1]["messages"][-1]["content"]
