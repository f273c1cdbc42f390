"""Naming and arguments of flows as tools: what an AI client sees and may send."""

from __future__ import annotations

from typing import Any

import pytest

from flowserve.errors import InvalidRunInput
from flowserve.flowtools import build_tools, run_request
from flowserve.store.base import FlowRecord


def record(flow_id: str, name: str, **extra: Any) -> FlowRecord:
    data = extra.pop("data", {"nodes": [], "edges": []})
    return FlowRecord(id=flow_id, name=name, data=data, mcp_enabled=True, **extra)


def test_name_prefers_action_name_then_endpoint_name_then_a_slug() -> None:
    tools = build_tools(
        [
            record("a", "Ignored", data={"action_name": "Summarise Text", "nodes": []}),
            record("b", "Ignored too", endpoint_name="my-endpoint"),
            record("c", "  Ask the Docs! v2 "),
        ]
    )
    assert [t.name for t in tools] == ["Summarise_Text", "ask_the_docs_v2", "my-endpoint"]


def test_clashing_names_get_an_id_suffix_decided_by_id_order() -> None:
    first = build_tools([record("bbbbbbbb-2", "Echo"), record("aaaaaaaa-1", "Echo")])
    second = build_tools([record("aaaaaaaa-1", "Echo"), record("bbbbbbbb-2", "Echo")])
    assert [(t.name, t.flow_id) for t in first] == [(t.name, t.flow_id) for t in second]
    assert {t.name for t in first} == {"echo", "echo_bbbbbbbb"}


def test_long_names_fit_what_clients_accept() -> None:
    tools = build_tools([record("x", "word " * 40), record("y", "word " * 40)])
    assert all(len(t.name) <= 64 for t in tools)
    assert len({t.name for t in tools}) == 2


def test_description_falls_back_to_the_flow_name() -> None:
    (tool,) = build_tools([record("x", "Echo")])
    assert "Echo" in tool.description


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, "input_value"),
        ({"input_value": 3}, "input_value"),
        ({"input_value": "x", "session_id": ""}, "session_id"),
        ({"input_value": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    arguments: dict[str, Any], problem: str
) -> None:
    (tool,) = build_tools([record("x", "Echo")])
    with pytest.raises(InvalidRunInput, match=problem):
        run_request(tool, arguments)


def test_each_call_without_a_session_gets_its_own() -> None:
    (tool,) = build_tools([record("x", "Echo")])
    first = run_request(tool, {"input_value": "a"})
    second = run_request(tool, {"input_value": "a"})
    assert first.session_id != second.session_id
    assert run_request(tool, {"input_value": "a", "session_id": "s"}).session_id == "s"
