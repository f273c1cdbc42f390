"""The Anthropic Messages client against the fake server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowserve.errors import UpstreamError
from flowserve.providers import (
    AnthropicClient,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Pool,
    ToolCall,
    ToolSpec,
    new_session,
)
from tests.fakes.anthropic_server import FakeAnthropic

LOOKUP = ToolSpec(
    name="lookup",
    description="Look up a word",
    parameters={"type": "object", "properties": {"word": {"type": "string"}}},
)


@pytest.fixture
async def http() -> AsyncIterator[Pool]:
    async with new_session() as session:
        yield session


def _client(http: Pool, fake: FakeAnthropic) -> AnthropicClient:
    return AnthropicClient(http, api_key="ant-key", base_url=fake.base_url, backoff=0.01)


async def test_system_goes_apart_and_tool_turns_become_blocks(
    http: Pool, fake_anthropic: FakeAnthropic
) -> None:
    calls = (
        ToolCall(id="t1", name="lookup", arguments={"word": "a"}),
        ToolCall(id="t2", name="lookup", arguments={"word": "b"}),
    )
    request = ChatRequest(
        model="claude-x",
        tools=(LOOKUP,),
        temperature=0.3,
        messages=(
            ChatMessage(role="system", content="sys"),
            ChatMessage(role="user", content="define a and b"),
            ChatMessage(role="assistant", content="Let me look.", tool_calls=calls),
            ChatMessage(role="tool", content="A!", tool_call_id="t1"),
            ChatMessage(role="tool", content="B!", tool_call_id="t2"),
        ),
    )
    response = await _client(http, fake_anthropic).complete(request)
    assert response.text == "Tool lookup said: B!"
    sent = fake_anthropic.requests[0]
    assert sent["system"] == "sys"
    assert sent["temperature"] == 0.3
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["text", "tool_use", "tool_use"]
    assert [b["tool_use_id"] for b in sent["messages"][2]["content"]] == ["t1", "t2"]
    assert sent["tools"][0]["input_schema"]["properties"] == {"word": {"type": "string"}}
    assert fake_anthropic.headers[0]["anthropic-version"] == "2023-06-01"


async def test_stream_assembles_text_tools_and_usage(
    http: Pool, fake_anthropic: FakeAnthropic
) -> None:
    client = _client(http, fake_anthropic)
    texts: list[str] = []
    finals: list[ChatResponse] = []
    request = ChatRequest(
        model="claude-x",
        tools=(LOOKUP,),
        messages=(ChatMessage(role="user", content='TOOL lookup {"word": "zeugma"}'),),
    )
    async for chunk in client.stream(request):
        if chunk.response is not None:
            finals.append(chunk.response)
        else:
            texts.append(chunk.text)
    [final] = finals
    assert texts == []
    [call] = final.tool_calls
    assert (call.name, call.arguments) == ("lookup", {"word": "zeugma"})
    assert final.finish_reason == "tool_use"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 3)


async def test_overloaded_is_retried(http: Pool, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.fail_statuses = [529]
    request = ChatRequest(model="m", messages=(ChatMessage(role="user", content="hi"),))
    assert (await _client(http, fake_anthropic).complete(request)).text == "Echo: hi"
    assert len(fake_anthropic.requests) == 2


async def test_errors_name_the_provider(http: Pool, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.fail_statuses = [400]
    request = ChatRequest(model="m", messages=(ChatMessage(role="user", content="hi"),))
    with pytest.raises(UpstreamError, match=r"Anthropic API error \(HTTP 400\): injected"):
        await _client(http, fake_anthropic).complete(request)
