"""Answers of the wrong shape (valid JSON, not what the API documents) from either
provider are an ``UpstreamError`` (502) naming the provider, never a stray
``AttributeError`` that the engine would report as a 500 run failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flowserve.errors import UpstreamError
from flowserve.providers import (
    AnthropicClient,
    ChatMessage,
    ChatRequest,
    OpenAIClient,
    Pool,
    new_session,
)
from tests.fakes.server import ThreadedServer


class Canned:
    """Answers every POST with ``body`` (JSON) or, for streamed requests, ``events`` (SSE)."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.events: list[str] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.answer, methods=["POST"])])

    async def answer(self, request: Request) -> Response:
        if (await request.json()).get("stream"):
            text = "".join(f"data: {e}\n\n" for e in self.events)
            return Response(text, media_type="text/event-stream")
        return Response(self.body, media_type="application/json")


@pytest.fixture(scope="module")
def canned() -> Iterator[tuple[Canned, str]]:
    fake = Canned()
    server = ThreadedServer(fake.app).start()
    try:
        yield fake, server.url
    finally:
        server.stop()


@pytest.fixture
async def http() -> AsyncIterator[Pool]:
    async with new_session() as session:
        yield session


ASK = ChatRequest(model="m", messages=(ChatMessage(role="user", content="hi"),))


def _client(kind: str, http: Pool, url: str) -> OpenAIClient | AnthropicClient:
    if kind == "openai":
        return OpenAIClient(http, api_key="k", base_url=url + "/v1", max_retries=0)
    return AnthropicClient(http, api_key="k", base_url=url, max_retries=0)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("openai", b'{"choices": [{"message": "just a string"}]}'),
        ("openai", b'{"choices": ["nope"]}'),
        ("openai", b"[1, 2]"),
        ("anthropic", b'{"content": ["a string block"]}'),
        ("anthropic", b'{"content": 5}'),
    ],
)
async def test_complete_with_a_misshapen_answer_is_an_upstream_error(
    canned: tuple[Canned, str], http: Pool, kind: str, body: bytes
) -> None:
    fake, url = canned
    fake.body = body
    with pytest.raises(UpstreamError, match="answered in an unexpected shape"):
        await _client(kind, http, url).complete(ASK)


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        ("openai", '{"choices": ["nope"]}'),
        ("openai", '{"choices": [{"delta": "text"}]}'),
        ("anthropic", '{"type": "content_block_delta", "delta": "text"}'),
        ("anthropic", '{"type": "message_start", "message": [1]}'),
    ],
)
async def test_stream_with_a_misshapen_event_is_an_upstream_error(
    canned: tuple[Canned, str], http: Pool, kind: str, event: str
) -> None:
    fake, url = canned
    fake.events = [event]
    with pytest.raises(UpstreamError, match="answered in an unexpected shape"):
        async for _chunk in _client(kind, http, url).stream(ASK):
            pass
