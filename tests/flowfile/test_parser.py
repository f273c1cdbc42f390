"""Reading Langflow's flow JSON into our model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowserve.errors import InvalidFlow, MalformedJSON
from flowserve.flowfile import load_document, parse_flow
from tests.conftest import FLOWS
from tests.helpers import edge, flow, node


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FLOWS / name).read_text())


def test_basic_prompting_export_parses_without_its_notes() -> None:
    parsed = parse_flow(fixture("basic-prompting.json"))
    assert parsed.id == "c1cb7b3c-2589-4754-ac61-8cf88df4a07e"
    assert parsed.name == "Basic Prompting"
    assert {n.type for n in parsed.nodes} == {
        "ChatInput",
        "Prompt",
        "LanguageModelComponent",
        "ChatOutput",
    }
    assert len(parsed.edges) == 3
    lm_edge = next(e for e in parsed.edges if e.target_field == "system_message")
    assert (lm_edge.source, lm_edge.source_output) == ("Prompt-t2oaK", "prompt")


def test_fields_keep_their_values_and_code_is_just_data() -> None:
    parsed = parse_flow(fixture("hello-world.json"))
    text_input = parsed.node("TextInput-J1CQK")
    assert text_input is not None
    assert text_input.fields["input_value"].value == "Hello, World!"
    assert text_input.fields["code"].type == "code"


def test_endpoint_name_and_flags_are_read() -> None:
    parsed = parse_flow(fixture("webhook-echo.json"))
    assert parsed.endpoint_name == "webhook-echo"
    assert parsed.webhook is True


def test_bare_graph_and_wrapped_document_are_both_accepted() -> None:
    document = fixture("prompt-echo.json")
    bare = parse_flow(document["data"], default_id="given-id")
    assert bare.id == "given-id"
    assert len(bare.nodes) == len(parse_flow(document).nodes)


def test_malformed_json_is_reported() -> None:
    with pytest.raises(MalformedJSON):
        load_document(b'{"data": ')
    with pytest.raises(InvalidFlow):
        load_document(b"[1, 2]")


def test_duplicate_ids_and_dangling_edges_name_the_nodes() -> None:
    document = flow(
        "f",
        [node("A-1", "ChatInput"), node("A-1", "ChatOutput")],
        [edge("A-1", "message", "Ghost-9", "input_value")],
    )
    with pytest.raises(InvalidFlow) as caught:
        parse_flow(document)
    problems = caught.value.problems
    assert any("'A-1': duplicate node id" in p for p in problems)
    assert any("'Ghost-9' does not exist" in p for p in problems)


def test_edges_with_only_string_handles_are_understood() -> None:
    handle_source = "{œdataTypeœ:œChatInputœ,œidœ:œA-1œ,œnameœ:œmessageœ}"
    handle_target = "{œfieldNameœ:œinput_valueœ,œidœ:œB-2œ}"
    document = flow(
        "f",
        [node("A-1", "ChatInput"), node("B-2", "ChatOutput")],
        [
            {
                "source": "A-1",
                "target": "B-2",
                "sourceHandle": handle_source,
                "targetHandle": handle_target,
            }
        ],
    )
    parsed = parse_flow(document)
    assert parsed.edges[0].source_output == "message"
    assert parsed.edges[0].target_field == "input_value"


def test_structure_errors_are_invalid_flow_not_crashes() -> None:
    with pytest.raises(InvalidFlow):
        parse_flow({"data": {"nodes": "not a list", "edges": []}})
    with pytest.raises(InvalidFlow):
        parse_flow({"name": "no data"})


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"data":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        (b'{"name": "\xff\xfe"}', "not valid UTF-8"),
        (b"", "Malformed flow JSON"),
    ],
)
def test_hostile_documents_are_malformed_json_not_crashes(content: bytes, fragment: str) -> None:
    with pytest.raises(MalformedJSON, match=fragment):
        load_document(content)
