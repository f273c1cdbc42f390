"""The OpenAI Chat Completions API, and every server that speaks it.

OpenAI itself, Ollama, vLLM, LM Studio, Groq, OpenRouter...: only the base URL
(and whether a key is sent) differs.
"""

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

OPENAI_BASE_URL = "https://api.openai.com/v1"

# Reasoning models take max_completion_tokens and only the default temperature.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAIClient:
    def __init__(
        self,
        http: Pool,
        *,
        api_key: str | None,
        base_url: str = OPENAI_BASE_URL,
        provider: str = "OpenAI",
        timeout: float = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.provider = provider
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.transport = Transport(
            http,
            provider,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            secrets=(api_key or "",),
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        body = self._body(request, stream=False)
        return await self.transport.post_parsed(self.url, self.headers, body, _parse_completion)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        body = self._body(request, stream=True)
        state = _StreamState()
        # aclosing: leaving early (at [DONE], or on an error) releases the connection now.
        async with aclosing(self.transport.stream_events(self.url, self.headers, body)) as events:
            async for _event, data in events:
                if data.strip() == "[DONE]":
                    state.done = True
                    break
                payload = self.transport.decode_event(data)
                if isinstance(payload, dict) and "error" in payload:
                    error = payload["error"]
                    message = error.get("message") if isinstance(error, dict) else error
                    raise UpstreamError(f"{self.provider} API error: {message}")
                text = self.transport.parse(state.feed, payload)
                if text:
                    yield Chunk(text=text)
        if not state.complete:
            # The body ended cleanly but the answer did not: a proxy or server cut it short.
            raise UpstreamError(f"{self.provider} stream ended before the answer was complete")
        yield Chunk(response=state.response())

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        reasoning = request.model.startswith(_REASONING_PREFIXES)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_wire_message(m) for m in request.messages],
        }
        if request.temperature is not None and not reasoning:
            body["temperature"] = request.temperature
        if request.max_tokens:
            body["max_completion_tokens" if reasoning else "max_tokens"] = request.max_tokens
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.json_mode:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": msgspec.json.encode(c.arguments).decode(),
                },
            }
            for c in message.tool_calls
        ]
    return wire


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        decoded = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeError):
        return {"input": raw}
    return decoded if isinstance(decoded, dict) else {"input": decoded}


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
    )


def _parse_completion(payload: Any) -> ChatResponse:
    choice = payload["choices"][0]
    message = choice["message"]
    calls = tuple(
        ToolCall(
            id=c.get("id") or f"call_{i}",
            name=c["function"]["name"],
            arguments=_arguments(c["function"].get("arguments")),
        )
        for i, c in enumerate(message.get("tool_calls") or [])
    )
    return ChatResponse(
        text=message.get("content") or "",
        tool_calls=calls,
        usage=_usage(payload.get("usage")),
        finish_reason=choice.get("finish_reason"),
        model=str(payload.get("model") or ""),
    )


class _StreamState:
    """Accumulates a streamed completion: text, tool-call fragments, usage."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model = ""
        self.done = False  # saw [DONE]
        self.answered = False  # saw a choice

    @property
    def complete(self) -> bool:
        return self.answered and (self.done or self.finish_reason is not None)

    def feed(self, payload: Any) -> str:
        if not isinstance(payload, dict):
            return ""
        self.model = str(payload.get("model") or self.model)
        self.usage = _usage(payload.get("usage")) or self.usage
        choices = payload.get("choices") or []
        if not choices:
            return ""
        choice = choices[0]
        self.answered = True
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        delta = choice.get("delta") or {}
        for fragment in delta.get("tool_calls") or []:
            call = self.calls.setdefault(
                int(fragment.get("index") or 0), {"id": "", "name": "", "arguments": ""}
            )
            call["id"] = fragment.get("id") or call["id"]
            function = fragment.get("function") or {}
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""
        text = delta.get("content") or ""
        if text:
            self.text.append(text)
        return str(text)

    def response(self) -> ChatResponse:
        calls = tuple(
            ToolCall(
                id=c["id"] or f"call_{i}", name=c["name"], arguments=_arguments(c["arguments"])
            )
            for i, c in sorted(self.calls.items())
        )
        return ChatResponse(
            text="".join(self.text),
            tool_calls=calls,
            usage=self.usage,
            finish_reason=self.finish_reason,
            model=self.model,
        )
