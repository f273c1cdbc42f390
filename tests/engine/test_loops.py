"""Loop components: the one cycle a flow may hold, iterated per item by the engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowserve.components import build_registry
from flowserve.engine import RunContext, compile_flow, execute
from flowserve.engine.run import NodeRun
from flowserve.engine.types import Data
from flowserve.errors import InvalidFlow, LoopLimitExceeded
from flowserve.flowfile import parse_flow
from flowserve.outcome import RunOutcome
from tests.engine.test_engine import ListMemory
from tests.helpers import edge, flow, node

REGISTRY = build_registry(plugins=False)


def feedback(source: str, output: str, loop: str) -> dict[str, Any]:
    """An edge into a loop's ``item`` handle, as Langflow writes it (no fieldName)."""
    return {
        "source": source,
        "target": loop,
        "data": {
            "sourceHandle": {"id": source, "name": output},
            "targetHandle": {"id": loop, "name": "item", "output_types": ["Data", "Message"]},
        },
    }


def rows_from(node_id: str, text: str) -> list[dict[str, Any]]:
    """A ChatInput whose lines a Type Convert turns into rows ``{"text": line}``."""
    lines = json.dumps([{"text": line} for line in text.split("\n") if line])
    return [
        node(f"In-{node_id}", "ChatInput", input_value=lines),
        node(node_id, "TypeConverterComponent", auto_parse=True, output_type="DataFrame"),
    ]


class Recorder:
    def __init__(self) -> None:
        self.done: list[str] = []
        self.events: list[tuple[str, Any]] = []

    def node_done(self, run: NodeRun) -> None:
        self.done.append(run.node.id)

    def emit(self, event: str, data: Any) -> None:
        self.events.append((event, data))


def context(recorder: Recorder | None = None, limit: int = 1000) -> RunContext:
    return RunContext(
        flow_id="f",
        flow_name="f",
        session_id="s",
        memory=ListMemory(),
        max_loop_iterations=limit,
        **({"node_done": recorder.node_done, "sink": recorder} if recorder else {}),
    )


def prefix_loop(text: str = "a\nb\nc") -> dict[str, Any]:
    """Rows -> Loop; item -> Prompt (with a prefix read from outside the loop) ->
    feedback; done -> ChatOutput. Each item's row also goes to a ChatOutput in the body."""
    return flow(
        "f",
        [
            *rows_from("Rows-1", text),
            node("Prefix-1", "TextInput", input_value="Item"),
            node("Loop-1", "LoopComponent"),
            node("Parse-1", "ParserComponent", pattern="{text}"),
            node("Prompt-1", "Prompt", template="{prefix}: {row}", prefix="", row=""),
            node("Each-1", "ChatOutput"),
            node("Out-1", "ChatOutput"),
        ],
        [
            edge("In-Rows-1", "message", "Rows-1", "input_data"),
            edge("Rows-1", "dataframe_output", "Loop-1", "data"),
            edge("Loop-1", "item", "Parse-1", "input_data"),
            edge("Parse-1", "parsed_text", "Prompt-1", "row"),
            edge("Prefix-1", "text", "Prompt-1", "prefix"),
            edge("Prompt-1", "prompt", "Each-1", "input_value"),
            feedback("Prompt-1", "prompt", "Loop-1"),
            edge("Loop-1", "done", "Out-1", "input_value"),
        ],
    )


async def test_loop_runs_its_body_once_per_item_then_releases_done() -> None:
    graph = compile_flow(parse_flow(prefix_loop()), REGISTRY)
    recorder = Recorder()
    result = await execute(graph, context(recorder), {})

    done = result.nodes["Loop-1"].outputs["done"]
    assert [row.data for row in done] == [
        {"text": "Item: a"},
        {"text": "Item: b"},
        {"text": "Item: c"},
    ]
    assert result.nodes["Loop-1"].outputs["item"] == Data(
        {"count": 3, "items": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}
    )
    # The node after the loop ran once, after every iteration.
    assert recorder.done.count("Out-1") == 1
    assert recorder.done.count("Prompt-1") == 3
    assert recorder.done.index("Out-1") > max(
        i for i, n in enumerate(recorder.done) if n == "Prompt-1"
    )
    # The outside input ran once, before the loop; the body's ChatOutput spoke per item.
    assert recorder.done.count("Prefix-1") == 1
    messages = [data.text for event, data in recorder.events if event == "add_message"]
    assert messages[1:4] == ["Item: a", "Item: b", "Item: c"]  # after the ChatInput's
    assert "Item: c" in messages[4]  # the done table, as the final ChatOutput shows it
    # Earlier iterations are kept for tracing; the last stands for the body in nodes.
    assert [r.node.id for r in result.iterations].count("Prompt-1") == 2
    assert result.nodes["Each-1"].outputs["message"].text == "Item: c"
    # Tracing spans and metrics see every iteration's run.
    outcome = RunOutcome(
        flow_id="f",
        flow_name="f",
        run_id="r",
        session_id="s",
        status="success",
        started_at=0.0,
        duration=0.0,
        usage=None,
        graph_run=result,
    )
    assert [t.node_id for t in outcome.timings()].count("Prompt-1") == 3
    assert [c for c, _ in outcome.component_durations()].count("Prompt") == 3


async def test_a_compiled_loop_graph_runs_again_the_same() -> None:
    graph = compile_flow(parse_flow(prefix_loop("x\ny")), REGISTRY)
    first = await execute(graph, context(), {})
    second = await execute(graph, context(), {})
    texts = [
        [r.data["text"] for r in run.nodes["Loop-1"].outputs["done"]] for run in (first, second)
    ]
    assert texts == [["Item: x", "Item: y"], ["Item: x", "Item: y"]]


async def test_a_loop_over_no_items_runs_no_body_and_is_done_empty() -> None:
    graph = compile_flow(parse_flow(prefix_loop("")), REGISTRY)
    recorder = Recorder()
    result = await execute(graph, context(recorder), {})
    assert result.nodes["Loop-1"].outputs["done"] == []
    assert "Prompt-1" not in recorder.done
    assert "Out-1" in recorder.done


async def test_tweaks_reach_nodes_inside_the_loop_body_every_iteration() -> None:
    graph = compile_flow(parse_flow(prefix_loop("p\nq")), REGISTRY)
    result = await execute(graph, context(), {"Prompt-1": {"template": "<{row}>"}})
    assert [r.data["text"] for r in result.nodes["Loop-1"].outputs["done"]] == ["<p>", "<q>"]


async def test_more_items_than_the_loop_bound_fails_naming_the_loop() -> None:
    graph = compile_flow(parse_flow(prefix_loop("a\nb\nc")), REGISTRY)
    recorder = Recorder()
    with pytest.raises(LoopLimitExceeded) as caught:
        await execute(graph, context(recorder, limit=2), {})
    assert caught.value.status == 422
    assert "'Loop-1' (Loop-1)" in caught.value.detail
    assert "3 items" in caught.value.detail
    assert "FLOWSERVE_MAX_LOOP_ITERATIONS" in caught.value.detail
    assert "Prompt-1" not in recorder.done  # refused before any iteration ran


async def test_nested_loops_iterate_the_inner_body_per_outer_item() -> None:
    document = flow(
        "f",
        [
            *rows_from("Rows-1", "a b\nc d e"),
            node("Outer-1", "LoopComponent"),
            node("Words-1", "SplitText", separator=" ", chunk_size=1, chunk_overlap=0),
            node("Inner-1", "LoopComponent"),
            node("Upper-1", "ParserComponent", pattern="<{text}>"),
            node("Join-1", "ParserComponent", pattern="{text}", sep="+"),
            node("Out-1", "ChatOutput"),
        ],
        [
            edge("In-Rows-1", "message", "Rows-1", "input_data"),
            edge("Rows-1", "dataframe_output", "Outer-1", "data"),
            edge("Outer-1", "item", "Words-1", "data_inputs"),
            edge("Words-1", "dataframe", "Inner-1", "data"),
            edge("Inner-1", "item", "Upper-1", "input_data"),
            feedback("Upper-1", "parsed_text", "Inner-1"),
            edge("Inner-1", "done", "Join-1", "input_data"),
            feedback("Join-1", "parsed_text", "Outer-1"),
            edge("Outer-1", "done", "Out-1", "input_value"),
        ],
    )
    graph = compile_flow(parse_flow(document), REGISTRY)
    recorder = Recorder()
    result = await execute(graph, context(recorder), {})
    done = [row.data["text"] for row in result.nodes["Outer-1"].outputs["done"]]
    assert done == ["<a>+<b>", "<c>+<d>+<e>"]
    assert recorder.done.count("Upper-1") == 5
    assert recorder.done.count("Inner-1") == 2


async def test_an_inactive_feedback_leaves_the_item_out_of_done() -> None:
    document = flow(
        "f",
        [
            *rows_from("Rows-1", "keep\ndrop\nkeep"),
            node("Loop-1", "LoopComponent"),
            node("Parse-1", "ParserComponent", pattern="{text}"),
            node("If-1", "ConditionalRouter", operator="equals", match_text="keep"),
            node("Out-1", "ChatOutput"),
        ],
        [
            edge("In-Rows-1", "message", "Rows-1", "input_data"),
            edge("Rows-1", "dataframe_output", "Loop-1", "data"),
            edge("Loop-1", "item", "Parse-1", "input_data"),
            edge("Parse-1", "parsed_text", "If-1", "input_text"),
            feedback("If-1", "true_result", "Loop-1"),
            edge("Loop-1", "done", "Out-1", "input_value"),
        ],
    )
    result = await execute(compile_flow(parse_flow(document), REGISTRY), context(), {})
    assert [r.data["text"] for r in result.nodes["Loop-1"].outputs["done"]] == ["keep", "keep"]


def compile_problems(document: dict[str, Any]) -> str:
    with pytest.raises(InvalidFlow) as caught:
        compile_flow(parse_flow(document), REGISTRY)
    assert caught.value.status == 422
    return caught.value.detail


def test_a_loop_body_that_never_feeds_back_is_rejected() -> None:
    document = prefix_loop()
    document["data"]["edges"] = [
        e for e in document["data"]["edges"] if "fieldName" in e["data"]["targetHandle"]
    ]
    detail = compile_problems(document)
    assert "node 'Loop-1' (a loop)" in detail
    assert "nothing feeds back into 'item'" in detail


def test_feedback_from_outside_the_body_is_rejected() -> None:
    document = prefix_loop()
    document["data"]["edges"].append(feedback("Prefix-1", "text", "Loop-1"))
    detail = compile_problems(document)
    assert "several nodes feed back into 'item'" in detail
    assert "node 'Prefix-1' feeds back into 'item' but is not in the loop body" in detail


def test_feedback_into_a_node_without_a_loop_output_is_rejected() -> None:
    document = prefix_loop()
    document["data"]["edges"].append(feedback("Prompt-1", "prompt", "Out-1"))
    detail = compile_problems(document)
    assert "node 'Out-1' (type ChatOutput) has no loop output 'item'" in detail


def test_a_body_reading_the_loops_done_output_is_rejected() -> None:
    document = prefix_loop()
    document["data"]["edges"].append(edge("Loop-1", "done", "Prompt-1", "prefix"))
    detail = compile_problems(document)
    assert "node 'Prompt-1' is in the loop body but reads the loop's 'done' output" in detail


def test_a_body_input_that_waits_for_the_loop_is_a_cycle() -> None:
    # Loop.done -> Prefix -> (a body node): the loop would wait for itself.
    document = prefix_loop()
    edges = document["data"]["edges"]
    edges.append(edge("Loop-1", "done", "Prefix-1", "input_value"))
    detail = compile_problems(document)
    assert "cycle around a loop between 'Loop-1', 'Prefix-1'" in detail


def test_a_cycle_not_through_a_loop_feedback_is_still_rejected() -> None:
    document = prefix_loop()
    document["data"]["edges"].append(edge("Prompt-1", "prompt", "Parse-1", "pattern"))
    detail = compile_problems(document)
    assert "cycle between nodes" in detail
    assert "'Parse-1'" in detail
    assert "'Prompt-1'" in detail


def test_a_flow_without_loops_keeps_the_plain_schedule() -> None:
    document = prefix_loop()
    graph = compile_flow(parse_flow(document), REGISTRY)
    assert set(graph.loops) == {"Loop-1"}
    assert graph.loops["Loop-1"].members == {"Parse-1", "Prompt-1", "Each-1"}
    # The top level sees the loop as one unit: its body is not scheduled there.
    assert "Prompt-1" not in graph.indegree
    assert graph.indegree["Loop-1"] == 2  # the rows and the prefix read by its body
    plain = compile_flow(parse_flow(flow("g", [node("In-1", "ChatInput")], [])), REGISTRY)
    assert plain.loops == {}


def test_a_feedback_edge_in_the_older_string_handle_form_is_recognised() -> None:
    document = prefix_loop()
    for item in document["data"]["edges"]:
        if "fieldName" not in item["data"]["targetHandle"]:
            handle = item.pop("data")["targetHandle"]
            item["sourceHandle"] = "{œnameœ: œpromptœ, œidœ: œPrompt-1œ}"
            item["targetHandle"] = json.dumps(handle).replace('"', "œ")
    parsed = parse_flow(document)
    [back] = [e for e in parsed.edges if e.feedback]
    assert (back.source, back.target, back.target_field) == ("Prompt-1", "Loop-1", "item")
    assert set(compile_flow(parsed, REGISTRY).loops) == {"Loop-1"}
