"""Compiling flows and running them: validation, tweaks, concurrency, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from flowserve.components import build_registry
from flowserve.engine import Message, RunContext, build_overlay, compile_flow, execute
from flowserve.errors import InvalidFlow, RunFailed, UnsupportedComponent
from flowserve.flowfile import parse_flow
from tests.conftest import FLOWS
from tests.helpers import Gate, edge, flow, make_registry, node


class ListMemory:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def append(self, message: Message) -> None:
        self.messages.append(message)

    async def history(
        self,
        *,
        limit: int,
        sender: str | None = None,
        order: str = "ASC",
        all_sessions: bool = False,
    ) -> list[Message]:
        return self.messages[-limit:]


def context(flow_id: str = "f") -> RunContext:
    return RunContext(flow_id=flow_id, flow_name=flow_id, session_id="s", memory=ListMemory())


def test_unknown_component_type_is_rejected_by_node_and_type() -> None:
    document = json.loads((FLOWS / "basic-prompting.json").read_text())
    for item in document["data"]["nodes"]:
        if item["id"] == "LanguageModelComponent-FLeYF":
            item["data"]["type"] = "Pinecone"  # a vector store we do not map
    with pytest.raises(UnsupportedComponent) as caught:
        compile_flow(parse_flow(document), build_registry(plugins=False))
    assert caught.value.status == 422
    assert "'LanguageModelComponent-FLeYF' (type Pinecone)" in caught.value.detail


def test_cycle_is_rejected_naming_its_nodes() -> None:
    document = flow(
        "f",
        [node("P-1", "Prompt", template="{a}", a=""), node("P-2", "Prompt", template="{b}", b="")],
        [edge("P-1", "prompt", "P-2", "b"), edge("P-2", "prompt", "P-1", "a")],
    )
    with pytest.raises(InvalidFlow) as caught:
        compile_flow(parse_flow(document), build_registry(plugins=False))
    assert "cycle between nodes 'P-1', 'P-2'" in caught.value.detail


def test_edge_to_missing_field_or_output_is_rejected() -> None:
    document = flow(
        "f",
        [node("In-1", "ChatInput"), node("Out-1", "ChatOutput")],
        [
            edge("In-1", "nope", "Out-1", "input_value"),
            edge("In-1", "message", "Out-1", "no_such_field"),
        ],
    )
    with pytest.raises(InvalidFlow) as caught:
        compile_flow(parse_flow(document), build_registry(plugins=False))
    assert "has no output 'nope'" in caught.value.detail
    assert "has no field 'no_such_field'" in caught.value.detail


def test_code_field_cannot_be_an_edge_target() -> None:
    document = flow(
        "f",
        [node("In-1", "ChatInput"), node("Out-1", "ChatOutput", code="x")],
        [edge("In-1", "message", "Out-1", "code")],
    )
    with pytest.raises(InvalidFlow, match="code field cannot be connected"):
        compile_flow(parse_flow(document), build_registry(plugins=False))


async def test_independent_branches_run_concurrently() -> None:
    # Two gates in parallel branches: each waits for the other to have started,
    # which can only happen if both are running at the same time.
    Gate.reset()
    document = flow(
        "f",
        [
            node("In-1", "ChatInput", input_value="hi"),
            node("G-a", "TestGate", gate="a"),
            node("G-b", "TestGate", gate="b"),
            node("Out-a", "ChatOutput"),
            node("Out-b", "ChatOutput"),
        ],
        [
            edge("In-1", "message", "G-a", "input_value"),
            edge("In-1", "message", "G-b", "input_value"),
            edge("G-a", "text", "Out-a", "input_value"),
            edge("G-b", "text", "Out-b", "input_value"),
        ],
    )
    graph = compile_flow(parse_flow(document), make_registry())

    async def open_when_both_entered() -> None:
        for name in ("a", "b"):
            await Gate.entered.setdefault(name, asyncio.Event()).wait()
        for name in ("a", "b"):
            Gate.gates.setdefault(name, asyncio.Event()).set()

    opener = asyncio.create_task(open_when_both_entered())
    result = await asyncio.wait_for(execute(graph, context(), {}), timeout=5)
    await opener
    assert result.nodes["Out-a"].outputs["message"].text == "hi"
    assert result.nodes["Out-b"].outputs["message"].text == "hi"


async def test_quick_nodes_beside_a_slow_one_do_not_wait_for_it() -> None:
    # ChatOutput is quick (run inline, no task); the gate beside it is not. The gate
    # opens only once the quick branch has stored its message: run in the wrong order,
    # or with the slow node awaited first, this would never finish.
    Gate.reset()
    document = flow(
        "f",
        [
            node("In-1", "ChatInput", input_value="hi"),
            node("G-a", "TestGate", gate="a"),
            node("Out-a", "ChatOutput"),
            node("Out-b", "ChatOutput"),
        ],
        [
            edge("In-1", "message", "G-a", "input_value"),
            edge("In-1", "message", "Out-b", "input_value"),
            edge("G-a", "text", "Out-a", "input_value"),
        ],
    )
    graph = compile_flow(parse_flow(document), make_registry())
    assert graph.nodes["Out-b"].quick
    assert not graph.nodes["G-a"].quick
    stored = asyncio.Event()

    class SignallingMemory(ListMemory):
        async def append(self, message: Message) -> None:
            await super().append(message)
            stored.set()

    ctx = RunContext(flow_id="f", flow_name="f", session_id="s", memory=SignallingMemory())

    async def open_after_the_quick_branch() -> None:
        await Gate.entered.setdefault("a", asyncio.Event()).wait()
        await stored.wait()
        Gate.gates.setdefault("a", asyncio.Event()).set()

    opener = asyncio.create_task(open_after_the_quick_branch())
    result = await asyncio.wait_for(execute(graph, ctx, {}), timeout=5)
    await opener
    assert result.nodes["Out-b"].outputs["message"].text == "hi"
    assert result.nodes["Out-a"].outputs["message"].text == "hi"


async def test_tweaks_overlay_without_changing_the_compiled_graph() -> None:
    document = json.loads((FLOWS / "prompt-echo.json").read_text())
    graph = compile_flow(parse_flow(document), build_registry(plugins=False))
    overlay = build_overlay(graph, {"Prompt-t2oaK": {"template": "T: {question}"}})
    overlay.setdefault("ChatInput-b6UCc", {})["input_value"] = "q"
    tweaked = await execute(graph, context(), overlay)
    plain = await execute(graph, context(), {})
    assert tweaked.nodes["ChatOutput-yK0AU"].outputs["message"].text == "T: q"
    assert plain.nodes["ChatOutput-yK0AU"].outputs["message"].text == (
        "You are terse. Question: Hello"
    )


async def test_a_failing_component_is_a_run_error_naming_it() -> None:
    document = flow(
        "f",
        [node("In-1", "ChatInput"), node("Boom-1", "TestBoom")],
        [edge("In-1", "message", "Boom-1", "input_value")],
    )
    graph = compile_flow(parse_flow(document), make_registry())
    with pytest.raises(RunFailed) as caught:
        await execute(graph, context(), {})
    assert "Error running component 'Boom-1' (Boom-1): ValueError: the component blew up" in (
        caught.value.detail
    )


async def test_chat_messages_are_stored_when_asked() -> None:
    document = json.loads((FLOWS / "prompt-echo.json").read_text())
    graph = compile_flow(parse_flow(document), build_registry(plugins=False))
    ctx = context()
    overlay: dict[str, Any] = {"ChatOutput-yK0AU": {"should_store_message": False}}
    await execute(graph, ctx, overlay)
    stored = ctx.memory.messages  # type: ignore[attr-defined]
    assert [m.sender for m in stored] == ["User"]


def test_prompt_templates_cannot_reach_python_attributes() -> None:
    from flowserve.components.prompt import render

    text = render("{x.__class__} {x[0]} {y}", False, {"x": "abc", "y": "ok"})
    assert text == "{x.__class__} {x[0]} ok"
    assert render("{{literal}} {y}", False, {"y": "v"}) == "{literal} v"
    assert render("{{ y }} {single}", True, {"y": "v"}) == "v {single}"
