"""The Anthropic Messages API: system prompt apart, content blocks, tool_use."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import msgspec

from flowserve.errors import UpstreamError
from flowserve.providers.http1 import Pool
from flowserve.providers.model import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Chunk,
    ToolCall,
    Usage,
)
from flowserve.providers.transport import Transport

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
# The Messages API requires max_tokens; this is used when a flow leaves it unset.
DEFAULT_MAX_TOKENS = 4096


class AnthropicClient:
    def __init__(
        self,
        http: Pool,
        *,
        api_key: str | None,
        base_url: str = ANTHROPIC_BASE_URL,
        provider: str = "Anthropic",
        timeout: float = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.provider = provider
        root = base_url.rstrip("/")
        self.url = (root if root.endswith("/v1") else root + "/v1") + "/messages"
        self.headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            self.headers["x-api-key"] = api_key
        self.transport = Transport(
            http,
            provider,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            secrets=(api_key or "",),
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        body = _body(request, False)
        return await self.transport.post_parsed(self.url, self.headers, body, _parse_message)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        state = _StreamState()
        stream = self.transport.stream_events(self.url, self.headers, _body(request, True))
        async with aclosing(stream) as events:
            async for event, data in events:
                payload = self.transport.decode_event(data)
                if event == "error" or (
                    isinstance(payload, dict) and payload.get("type") == "error"
                ):
                    error = payload.get("error") if isinstance(payload, dict) else None
                    message = error.get("message") if isinstance(error, dict) else payload
                    raise UpstreamError(f"{self.provider} API error: {message}")
                text = self.transport.parse(state.feed, payload)
                if text:
                    yield Chunk(text=text)
                if isinstance(payload, dict) and payload.get("type") == "message_stop":
                    state.done = True
                    break
        if not state.complete:
            # The body ended cleanly but the answer did not: a proxy or server cut it short.
            raise UpstreamError(f"{self.provider} stream ended before the answer was complete")
        yield Chunk(response=state.response())


def _body(request: ChatRequest, stream: bool) -> dict[str, Any]:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": _wire_messages(request.messages),
    }
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    if stream:
        body["stream"] = True
    return body


def _wire_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """Anthropic wants alternating user/assistant turns of content blocks: tool
    results are user turns, and consecutive turns of one role are merged."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
        elif message.content:
            blocks.append({"type": "text", "text": message.content})
        blocks.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in message.tool_calls
        )
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    return wire


def _usage(raw: Any, base: Usage | None = None) -> Usage | None:
    if not isinstance(raw, dict):
        return base
    previous = base or Usage()
    return Usage(
        input_tokens=int(raw.get("input_tokens") or previous.input_tokens),
        output_tokens=int(raw.get("output_tokens") or previous.output_tokens),
    )


def _parse_message(payload: Any) -> ChatResponse:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in payload["content"]:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            arguments = block.get("input")
            calls.append(
                ToolCall(
                    id=block["id"],
                    name=block["name"],
                    arguments=arguments if isinstance(arguments, dict) else {},
                )
            )
    return ChatResponse(
        text="".join(texts),
        tool_calls=tuple(calls),
        usage=_usage(payload.get("usage")),
        finish_reason=payload.get("stop_reason"),
        model=str(payload.get("model") or ""),
    )


class _StreamState:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.blocks: dict[int, dict[str, Any]] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model = ""
        self.done = False  # saw message_stop
        self.started = False  # saw message_start

    @property
    def complete(self) -> bool:
        return self.started and (self.done or self.finish_reason is not None)

    def feed(self, payload: Any) -> str:
        if not isinstance(payload, dict):
            return ""
        kind = payload.get("type")
        if kind == "message_start":
            self.started = True
            message = payload.get("message") or {}
            self.model = str(message.get("model") or "")
            self.usage = _usage(message.get("usage"))
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.blocks[int(payload.get("index") or 0)] = {
                    "id": block.get("id") or "",
                    "name": block.get("name") or "",
                    "json": "",
                }
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta":
                text = str(delta.get("text") or "")
                self.text.append(text)
                return text
            if delta.get("type") == "input_json_delta":
                block = self.blocks.get(int(payload.get("index") or 0))
                if block is not None:
                    block["json"] += delta.get("partial_json") or ""
        elif kind == "message_delta":
            self.finish_reason = (payload.get("delta") or {}).get("stop_reason")
            self.usage = _usage(payload.get("usage"), self.usage)
        return ""

    def response(self) -> ChatResponse:
        calls = []
        for _, block in sorted(self.blocks.items()):
            try:
                arguments = msgspec.json.decode(block["json"]) if block["json"] else {}
            except (msgspec.DecodeError, UnicodeError):
                arguments = {}
            calls.append(
                ToolCall(
                    id=block["id"],
                    name=block["name"],
                    arguments=arguments if isinstance(arguments, dict) else {},
                )
            )
        return ChatResponse(
            text="".join(self.text),
            tool_calls=tuple(calls),
            usage=self.usage,
            finish_reason=self.finish_reason,
            model=self.model,
        )
