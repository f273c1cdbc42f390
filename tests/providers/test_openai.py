"""The OpenAI-compatible client against the fake server: replies, streaming, tools,
retries, timeouts and errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from flowserve.errors import UpstreamError
from flowserve.providers import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    OpenAIClient,
    Pool,
    ToolCall,
    ToolSpec,
    new_session,
)
from tests.fakes.openai_server import FakeOpenAI

WEATHER = ToolSpec(
    name="weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


@pytest.fixture
async def http() -> AsyncIterator[Pool]:
    async with new_session() as session:
        yield session


def _client(http: Pool, fake: FakeOpenAI, **kwargs: object) -> OpenAIClient:
    options: dict[str, object] = {
        "api_key": "sk-secret-123",
        "base_url": fake.base_url,
        "backoff": 0.01,
        **kwargs,
    }
    return OpenAIClient(http, **options)  # type: ignore[arg-type]


def _ask(text: str, tools: tuple[ToolSpec, ...] = ()) -> ChatRequest:
    return ChatRequest(
        model="gpt-4o-mini",
        tools=tools,
        temperature=0.2,
        max_tokens=50,
        messages=(
            ChatMessage(role="system", content="be brief"),
            ChatMessage(role="user", content=text),
        ),
    )


async def _collect(client: OpenAIClient, request: ChatRequest) -> tuple[list[str], ChatResponse]:
    texts: list[str] = []
    final: ChatResponse | None = None
    async for chunk in client.stream(request):
        if chunk.response is not None:
            final = chunk.response
        else:
            texts.append(chunk.text)
    assert final is not None
    return texts, final


async def test_complete_sends_the_request_and_reads_usage(
    http: Pool, fake_openai: FakeOpenAI
) -> None:
    response = await _client(http, fake_openai).complete(_ask("hello there"))
    assert response.text == "Echo: hello there"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 3)
    sent = fake_openai.requests[0]
    assert sent["max_tokens"] == 50
    assert sent["temperature"] == 0.2
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-secret-123"


async def test_reasoning_models_get_max_completion_tokens(
    http: Pool, fake_openai: FakeOpenAI
) -> None:
    request = ChatRequest(
        model="o3-mini",
        max_tokens=10,
        temperature=0.5,
        messages=(ChatMessage(role="user", content="x"),),
    )
    await _client(http, fake_openai).complete(request)
    sent = fake_openai.requests[0]
    assert sent["max_completion_tokens"] == 10
    assert "max_tokens" not in sent
    assert "temperature" not in sent


async def test_stream_yields_chunks_that_join_to_the_answer(
    http: Pool, fake_openai: FakeOpenAI
) -> None:
    texts, final = await _collect(_client(http, fake_openai), _ask("a b c d"))
    assert len(texts) == 5
    assert "".join(texts) == final.text == "Echo: a b c d"
    assert final.usage is not None
    assert final.usage.output_tokens == 5
    assert fake_openai.requests[0]["stream_options"] == {"include_usage": True}


async def test_tool_calls_plain_and_streamed(http: Pool, fake_openai: FakeOpenAI) -> None:
    client = _client(http, fake_openai)
    request = _ask('TOOL weather {"city": "Paris"}', (WEATHER,))
    plain = await client.complete(request)
    _, streamed = await _collect(client, request)
    for response in (plain, streamed):
        assert response.text == ""
        [call] = response.tool_calls
        assert (call.name, call.arguments) == ("weather", {"city": "Paris"})
    assert fake_openai.requests[0]["tools"][0]["function"]["name"] == "weather"


async def test_tool_results_are_sent_back_in_openai_shape(
    http: Pool, fake_openai: FakeOpenAI
) -> None:
    call = ToolCall(id="call_9", name="weather", arguments={"city": "Oslo"})
    request = ChatRequest(
        model="m",
        tools=(WEATHER,),
        messages=(
            ChatMessage(role="user", content="weather?"),
            ChatMessage(role="assistant", tool_calls=(call,)),
            ChatMessage(role="tool", content="-3C", tool_call_id="call_9"),
        ),
    )
    response = await _client(http, fake_openai).complete(request)
    assert response.text == "Tool weather said: -3C"
    assistant = fake_openai.requests[0]["messages"][1]
    assert assistant["content"] is None
    assert assistant["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city":"Oslo"}',
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_retries_429_and_5xx_then_succeeds(
    http: Pool, fake_openai: FakeOpenAI, stream: bool
) -> None:
    fake_openai.fail_statuses = [429, 503]
    client = _client(http, fake_openai)
    if stream:
        _, response = await _collect(client, _ask("again"))
    else:
        response = await client.complete(_ask("again"))
    assert response.text == "Echo: again"
    assert len(fake_openai.requests) == 3


async def test_retries_are_bounded(http: Pool, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_statuses = [500, 500, 500, 500]
    with pytest.raises(UpstreamError, match=r"OpenAI API error \(HTTP 500\): injected failure"):
        await _client(http, fake_openai, max_retries=2).complete(_ask("x"))
    assert len(fake_openai.requests) == 3


async def test_client_errors_are_not_retried(http: Pool, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_statuses = [400]
    with pytest.raises(UpstreamError, match="HTTP 400"):
        await _client(http, fake_openai).complete(_ask("x"))
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_error_messages_never_contain_the_key(
    http: Pool, fake_openai: FakeOpenAI, stream: bool
) -> None:
    fake_openai.require_key = "sk-other"
    client = _client(http, fake_openai)
    call = _collect(client, _ask("x")) if stream else client.complete(_ask("x"))
    with pytest.raises(UpstreamError) as caught:
        await call
    assert "Incorrect API key provided: ***" in caught.value.detail
    assert "sk-secret-123" not in caught.value.detail


async def test_timeout_is_an_upstream_error(http: Pool, fake_openai: FakeOpenAI) -> None:
    fake_openai.latency = 1.0
    with pytest.raises(UpstreamError, match=r"timed out after 0\.2s"):
        await _client(http, fake_openai, timeout=0.2, max_retries=0).complete(_ask("slow"))


async def test_unreachable_server_is_an_upstream_error(http: Pool) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIClient(
        http, api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01
    )
    with pytest.raises(UpstreamError, match="OpenAI API unreachable"):
        await client.complete(_ask("x"))


async def test_no_key_sends_no_authorization(http: Pool, fake_openai: FakeOpenAI) -> None:
    client = OpenAIClient(http, api_key=None, base_url=fake_openai.base_url, provider="Ollama")
    assert (await client.complete(_ask("local"))).text == "Echo: local"
    assert "authorization" not in fake_openai.headers[0]
