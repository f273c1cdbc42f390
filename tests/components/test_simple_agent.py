"""simple-agent.json (ChatInput -> Agent with URL and Web Search tools -> ChatOutput)."""

from __future__ import annotations

import json

import pytest

from flowserve.errors import RunFailed
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.flows import RecordingSink, load_graph, run_graph
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import ThreadedServer

AGENT = "Agent-EXpSZ"
ALLOW = {"outbound_allowlist": "127.0.0.1"}


def _variables(fake: FakeOpenAI) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk",
        "OPENAI_BASE_URL": fake.base_url,
    }


async def test_agent_calls_url_tool_and_uses_its_result(
    fake_openai: FakeOpenAI, website: ThreadedServer
) -> None:
    graph = load_graph("simple-agent.json")
    args = json.dumps({"urls": [f"{website.url}/page"]})
    run = await run_graph(
        graph,
        input_value=f"What is the secret number?\nTOOL fetch_content {args}",
        tweaks={AGENT: {"model": "gpt-4o-mini"}},
        variables=_variables(fake_openai),
        services=ALLOW,
    )
    first, second = fake_openai.requests
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert set(offered) == {
        "fetch_content",
        "perform_search",
        "evaluate_expression",
        "get_current_date",
    }
    assert offered["fetch_content"]["parameters"]["properties"]["urls"]["type"] == "array"
    # the system prompt's placeholders are filled
    system = first["messages"][0]["content"]
    assert "Model: gpt-4o-mini" in system
    assert "{current_date}" not in system
    tool_turn = second["messages"][-1]
    assert tool_turn["role"] == "tool"
    assert "The secret number is 4217." in tool_turn["content"]
    assert "var x" not in tool_turn["content"]  # scripts are not page text
    answer = run.output_text()
    assert answer.startswith("Tool fetch_content said:")
    assert "4217" in answer
    response = run.result.nodes[AGENT].outputs["response"]
    assert response.usage is not None
    assert run.ctx.usage is not None
    assert response.usage.total_tokens == run.ctx.usage.total_tokens  # both turns counted
    assert response.usage.output_tokens > 3


async def test_agent_tool_refused_by_ssrf_guard_reports_the_refusal(
    fake_openai: FakeOpenAI, website: ThreadedServer
) -> None:
    graph = load_graph("simple-agent.json")
    variables = {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": fake_openai.base_url}
    args = json.dumps({"urls": [f"{website.url}/page"]})
    run = await run_graph(
        graph,
        input_value=f"TOOL fetch_content {args}",
        tweaks={AGENT: {"model": "gpt-4o-mini"}},
        variables=variables,
    )
    answer = run.output_text()
    assert "refusing to fetch" in answer
    assert "4217" not in answer


async def test_agent_uses_builtin_calculator(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("simple-agent.json")
    run = await run_graph(
        graph,
        input_value='TOOL evaluate_expression {"expression": "6*7+0.5"}',
        tweaks={AGENT: {"model": "gpt-4o-mini"}},
        variables=_variables(fake_openai),
        services=ALLOW,
    )
    assert run.output_text() == "Tool evaluate_expression said: 42.5"


async def test_builtin_tools_can_be_disabled(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("simple-agent.json")
    await run_graph(
        graph,
        input_value="hello",
        tweaks={
            AGENT: {
                "model": "gpt-4o-mini",
                "add_calculator_tool": False,
                "add_current_date_tool": False,
            }
        },
        variables=_variables(fake_openai),
        services=ALLOW,
    )
    names = {t["function"]["name"] for t in fake_openai.requests[0]["tools"]}
    assert names == {"fetch_content", "perform_search"}


async def test_unknown_tool_call_goes_back_to_the_model(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("simple-agent.json")
    run = await run_graph(
        graph,
        input_value="TOOL rm_rf {}",
        tweaks={AGENT: {"model": "gpt-4o-mini"}},
        variables=_variables(fake_openai),
        services=ALLOW,
    )
    assert run.output_text() == "Tool rm_rf said: Error: there is no tool named 'rm_rf'"


async def test_streaming_agent_streams_the_final_answer(
    fake_openai: FakeOpenAI, website: ThreadedServer
) -> None:
    graph = load_graph("simple-agent.json")
    sink = RecordingSink()
    args = json.dumps({"urls": [f"{website.url}/page"]})
    run = await run_graph(
        graph,
        input_value=f"TOOL fetch_content {args}",
        streaming=True,
        sink=sink,
        tweaks={AGENT: {"model": "gpt-4o-mini"}},
        variables=_variables(fake_openai),
        services=ALLOW,
    )
    assert all(r["stream"] for r in fake_openai.requests)
    streamed = "".join(t["chunk"] for t in sink.named("token"))
    assert streamed == run.output_text()
    assert "4217" in streamed
    [log] = sink.named("log")
    assert (log["id"], log["name"], log["type"]) == (AGENT, "fetch_content", "tool")
    assert "4217" in log["message"]["output"]


async def test_agent_over_anthropic_with_tools(
    fake_anthropic: FakeAnthropic, website: ThreadedServer
) -> None:
    graph = load_graph("simple-agent.json")
    args = json.dumps({"urls": [f"{website.url}/page"]})
    run = await run_graph(
        graph,
        input_value=f"TOOL fetch_content {args}",
        tweaks={AGENT: {"model": [{"name": "claude-sonnet-4-5", "provider": "Anthropic"}]}},
        variables={
            "ANTHROPIC_API_KEY": "k",
            "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
        },
        services=ALLOW,
    )
    assert "4217" in run.output_text()
    second = fake_anthropic.requests[1]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][1]["content"][0]["type"] == "tool_use"
    assert second["messages"][2]["content"][0]["type"] == "tool_result"
    assert {t["name"] for t in second["tools"]} >= {"fetch_content", "perform_search"}


async def test_max_iterations_bounds_the_loop(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("simple-agent.json")
    # the fake keeps calling the tool while the user's line asks for it and the last
    # turn is not a tool result, so one iteration can never finish

    with pytest.raises(RunFailed, match="max_iterations"):
        await run_graph(
            graph,
            input_value='TOOL evaluate_expression {"expression": "1"}',
            tweaks={AGENT: {"model": "gpt-4o-mini", "max_iterations": 1}},
            variables=_variables(fake_openai),
            services=ALLOW,
        )
