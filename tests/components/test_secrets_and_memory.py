"""Global-variable secrets, Message History, MemoryBase ranking, agents as tools."""

from __future__ import annotations

import json

import pytest

from flowserve.components.agent import Agent
from flowserve.components.memory import Memory, MemoryBase
from flowserve.components.models import LanguageModelComponent
from flowserve.components.registry import BUILTIN, build_registry, catalogue
from flowserve.engine import Graph, compile_flow
from flowserve.engine.types import Message
from flowserve.errors import Invalid, UnsupportedComponent
from flowserve.flowfile.parser import parse_flow
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.flows import FLOWS, MessageStore, make_node, node_context, run_graph
from tests.fakes.openai_server import FakeOpenAI

AGENT = "Agent-AlLub"


def _chatbot_with_key_variable(variable: str) -> Graph:
    document = json.loads((FLOWS / "memory-chatbot.json").read_text())
    for node in document["data"]["nodes"]:
        if node["id"] == AGENT:
            node["data"]["node"]["template"]["api_key"]["value"] = variable
    return compile_flow(parse_flow(document), build_registry(BUILTIN, plugins=False))


async def test_load_from_db_key_resolves_from_global_variables(fake_openai: FakeOpenAI) -> None:
    graph = _chatbot_with_key_variable("TEAM_OPENAI_KEY")
    await run_graph(
        graph,
        input_value="hi",
        tweaks={AGENT: {"model": "gpt-4o-mini"}},
        variables={
            "TEAM_OPENAI_KEY": "sk-team",
            "OPENAI_API_KEY": "sk-env",
            "OPENAI_BASE_URL": fake_openai.base_url,
        },
    )
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-team"


async def test_unset_global_variable_fails_before_any_call(fake_openai: FakeOpenAI) -> None:
    graph = _chatbot_with_key_variable("TEAM_OPENAI_KEY")
    with pytest.raises(Invalid, match="X-LANGFLOW-GLOBAL-VAR-TEAM_OPENAI_KEY"):
        await run_graph(
            graph,
            input_value="hi",
            tweaks={AGENT: {"model": "gpt-4o-mini"}},
            variables={"OPENAI_BASE_URL": fake_openai.base_url},
        )
    assert fake_openai.requests == []


async def test_tweaked_key_wins_over_global_variable(fake_openai: FakeOpenAI) -> None:
    graph = _chatbot_with_key_variable("TEAM_OPENAI_KEY")
    await run_graph(
        graph,
        input_value="hi",
        tweaks={AGENT: {"model": "gpt-4o-mini", "api_key": "sk-tweak"}},
        variables={"OPENAI_BASE_URL": fake_openai.base_url},
    )
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-tweak"


def _message(text: str, sender: str, session: str = "s1") -> Message:
    return Message(
        text=text,
        sender=sender,
        sender_name="User" if sender == "User" else "AI",
        session_id=session,
        flow_id="flow-1",
        run_id="earlier",
    )


async def _store() -> MessageStore:
    store = MessageStore()
    for text, sender, session in [
        ("My name is Ada", "User", "s1"),
        ("Hi Ada!", "Machine", "s1"),
        ("I like green tea", "User", "s1"),
        ("Noted.", "Machine", "s1"),
        ("My dog is Rex", "User", "s2"),
    ]:
        store.messages.append(_message(text, sender, session))
    return store


async def test_message_history_renders_the_last_messages() -> None:
    component = Memory(make_node("Memory"))
    ctx = node_context(store=await _store(), wanted={"messages_text", "dataframe"})
    out = await component.run(
        ctx,
        {
            "n_messages": 3,
            "order": "Descending",
            "sender_type": "Machine and User",
            "template": "{sender_name}: {text}",
        },
    )
    assert out["messages_text"].text == "AI: Noted.\nUser: I like green tea\nAI: Hi Ada!"
    assert [r.data["text"] for r in out["dataframe"]] == ["Noted.", "I like green tea", "Hi Ada!"]


async def test_message_history_filters_by_sender() -> None:
    component = Memory(make_node("Memory"))
    ctx = node_context(store=await _store(), wanted={"messages_text"})
    out = await component.run(ctx, {"n_messages": 10, "sender_type": "User", "template": "{text}"})
    assert out["messages_text"].text == "My name is Ada\nI like green tea"


async def test_message_history_store_mode_appends() -> None:
    store = MessageStore()
    component = Memory(make_node("Memory"))
    ctx = node_context(store=store, wanted={"stored_messages"})
    out = await component.run(
        ctx, {"mode": "Store", "message": "remember this", "sender": "User", "sender_name": "Bob"}
    )
    assert out["stored_messages"].text == "remember this"
    [stored] = store.messages
    assert (stored.text, stored.sender, stored.sender_name, stored.session_id) == (
        "remember this",
        "User",
        "Bob",
        "s1",
    )


async def test_memory_base_ranks_by_relevance_within_the_session() -> None:
    component = MemoryBase(make_node("MemoryBase"))
    ctx = node_context(store=await _store(), wanted={"search_results"})
    out = await component.run(
        ctx,
        {
            "search_query": "what is the user's name?",
            "top_k": 2,
            "filter_by_session": True,
            "include_metadata": True,
        },
    )
    rows = [r.data for r in out["search_results"]]
    assert rows[0]["text"] == "My name is Ada"
    assert rows[0]["session_id"] == "s1"
    assert len(rows) == 1  # nothing else mentions a name


async def test_memory_base_across_sessions() -> None:
    component = MemoryBase(make_node("MemoryBase"))
    params = {"search_query": "dog", "top_k": 5, "include_metadata": False}
    only_s1 = await component.run(
        node_context(store=await _store(), wanted={"search_results"}),
        {**params, "filter_by_session": True},
    )
    everywhere = await component.run(
        node_context(store=await _store(), wanted={"search_results"}),
        {**params, "filter_by_session": False},
    )
    assert only_s1["search_results"] == []
    assert [r.data["text"] for r in everywhere["search_results"]] == ["My dog is Rex"]


async def test_an_agent_can_be_another_agents_tool(fake_openai: FakeOpenAI) -> None:
    component = Agent(make_node("Agent", model="gpt-4o-mini"))
    ctx = node_context(
        wanted={"component_as_tool"},
        variables={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_openai.base_url},
    )
    params = {
        "model": "gpt-4o-mini",
        "system_prompt": "helper",
        "n_messages": 0,
        "max_iterations": 3,
        "add_calculator_tool": False,
        "add_current_date_tool": False,
    }
    [tool] = (await component.run(ctx, params))["component_as_tool"]
    assert tool.name == "Agent"
    assert list(tool.parameters["properties"]) == ["input_value"]
    assert await tool.invoke({"input_value": "sub-task"}) == "Echo: sub-task"
    assert ctx.run.usage is not None  # the inner agent's tokens count for the run
    assert ctx.run.usage.total_tokens > 0


def test_catalogue_lists_every_builtin_and_unknown_types_are_rejected() -> None:
    registry = build_registry(BUILTIN, plugins=False)
    listed = {name for group in catalogue(registry).values() for name in group}
    assert listed >= {
        "Agent",
        "LanguageModelComponent",
        "OpenAIModel",
        "AnthropicModel",
        "OllamaModel",
        "Memory",
        "MemoryBase",
        "ParserComponent",
        "parser",
        "TypeConverterComponent",
        "SplitText",
        "StructuredOutput",
        "ConditionalRouter",
        "CalculatorComponent",
        "URLComponent",
        "APIRequest",
        "UnifiedWebSearch",
        "Webhook",
        "Knowledge",
        "OpenAIEmbeddings",
        "pgvector",
        "Chroma",
        "AstraDB",
    }
    document = json.loads((FLOWS / "simple-agent.json").read_text())
    document["data"]["nodes"][0]["data"]["type"] = "Pinecone"
    with pytest.raises(UnsupportedComponent, match="Pinecone"):
        compile_flow(parse_flow(document), registry)


async def test_agent_structured_response_follows_the_schema(fake_openai: FakeOpenAI) -> None:
    component = Agent(make_node("Agent"))
    ctx = node_context(
        wanted={"response", "structured_response"},
        variables={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_openai.base_url},
    )
    out = await component.run(
        ctx,
        {
            "model": "gpt-4o-mini",
            "system_prompt": "",
            "n_messages": 0,
            "max_iterations": 2,
            "input_value": '{"city": "Lyon", "population": 522250}',
            "output_schema": [
                {"name": "city", "type": "str"},
                {"name": "population", "type": "int"},
            ],
            "format_instructions": "Extract as JSON.",
        },
    )
    assert out["response"].text == 'Echo: {"city": "Lyon", "population": 522250}'
    assert out["structured_response"].data == {"city": "Lyon", "population": 522250}
    extraction = fake_openai.requests[1]
    assert extraction["response_format"] == {"type": "json_object"}
    assert '"population":{"type":"integer"}' in extraction["messages"][0]["content"]


async def test_connected_language_model_drives_the_agent(fake_anthropic: FakeAnthropic) -> None:
    model = LanguageModelComponent(make_node("LanguageModelComponent"))
    ctx = node_context(
        wanted={"model_output"},
        variables={"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake_anthropic.base_url},
    )
    settings = (await model.run(ctx, {"model": "claude-haiku-4-5", "temperature": 0.0}))[
        "model_output"
    ]
    assert fake_anthropic.requests == []  # building the model output calls nothing
    agent = Agent(make_node("Agent"))
    out = await agent.run(
        node_context(wanted={"response"}),
        {"model": settings, "input_value": "via edge", "n_messages": 0, "max_iterations": 2},
    )
    assert out["response"].text == "Echo: via edge"
    assert fake_anthropic.requests[0]["temperature"] == 0.0
