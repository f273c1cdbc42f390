"""memory-chatbot.json (ChatInput -> Agent with a MemoryBase tool -> ChatOutput), unmodified."""

from __future__ import annotations

import json

from tests.fakes.flows import MessageStore, load_graph, run_graph
from tests.fakes.openai_server import FakeOpenAI

AGENT = "Agent-AlLub"


def _variables(fake: FakeOpenAI) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.base_url}


async def test_second_turn_sends_the_first_turn(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("memory-chatbot.json")
    store = MessageStore()
    tweaks = {AGENT: {"model": [{"name": "gpt-4o-mini", "provider": "OpenAI"}]}}
    first = await run_graph(
        graph,
        input_value="My name is Ada",
        tweaks=tweaks,
        variables=_variables(fake_openai),
        store=store,
        session_id="s1",
    )
    assert first.output_text() == "Echo: My name is Ada"
    second = await run_graph(
        graph,
        input_value="What is my name?",
        tweaks=tweaks,
        variables=_variables(fake_openai),
        store=store,
        session_id="s1",
    )
    assert second.output_text() == "Echo: What is my name?"
    sent = fake_openai.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert [m["content"] for m in sent[1:]] == [
        "My name is Ada",
        "Echo: My name is Ada",
        "What is my name?",
    ]
    assert sent[0]["content"].startswith("You are a friendly conversational assistant")
    tool_names = {t["function"]["name"] for t in fake_openai.requests[1]["tools"]}
    assert tool_names == {"retrieve_memory", "evaluate_expression", "get_current_date"}


async def test_other_session_does_not_see_the_first_turn(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("memory-chatbot.json")
    store = MessageStore()
    tweaks = {AGENT: {"model": "gpt-4o-mini"}}
    await run_graph(
        graph,
        input_value="My name is Ada",
        tweaks=tweaks,
        variables=_variables(fake_openai),
        store=store,
        session_id="s1",
    )
    await run_graph(
        graph,
        input_value="Who am I?",
        tweaks=tweaks,
        variables=_variables(fake_openai),
        store=store,
        session_id="s2",
    )
    assert [m["role"] for m in fake_openai.requests[1]["messages"]] == ["system", "user"]


async def test_agent_recalls_through_the_memory_base_tool(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("memory-chatbot.json")
    store = MessageStore()
    tweaks = {AGENT: {"model": "gpt-4o-mini"}}
    await run_graph(
        graph,
        input_value="My name is Ada and I like tea",
        tweaks=tweaks,
        variables=_variables(fake_openai),
        store=store,
        session_id="s1",
    )
    question = 'What is my name?\nTOOL retrieve_memory {"search_query": "user name"}'
    run = await run_graph(
        graph,
        input_value=question,
        tweaks=tweaks,
        variables=_variables(fake_openai),
        store=store,
        session_id="s1",
    )
    answer = run.output_text()
    assert answer.startswith("Tool retrieve_memory said:")
    assert "My name is Ada and I like tea" in answer
    # the question itself (already stored by ChatInput) is not a memory
    tool_turn = fake_openai.requests[-1]["messages"][-1]
    assert tool_turn["role"] == "tool"
    assert "TOOL retrieve_memory" not in tool_turn["content"]
    logs = run.result.nodes[AGENT].logs
    assert logs[0]["name"] == "retrieve_memory"
    assert json.dumps(logs[0]["message"]["input"]) == '{"search_query": "user name"}'
