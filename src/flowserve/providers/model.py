"""The neutral chat model shared by every provider client.

Components build a ``ChatRequest`` from these types and get back a
``ChatResponse`` (or a stream of ``Chunk``s ending with one), whichever API
serves the model. Each client translates to and from its provider's wire
format; nothing outside ``providers/`` sees a provider's JSON.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Literal, Protocol

import msgspec

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(msgspec.Struct, frozen=True):
    """The model asks for ``name`` to be called with ``arguments``."""

    id: str
    name: str
    arguments: dict[str, Any]


class ChatMessage(msgspec.Struct, frozen=True):
    role: Role
    content: str = ""
    # An assistant turn that called tools; a tool turn answers ``tool_call_id``.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(msgspec.Struct, frozen=True):
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


class Usage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ChatRequest(msgspec.Struct, frozen=True):
    model: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    # Ask for a JSON object answer (OpenAI's response_format; a hint elsewhere).
    json_mode: bool = False


class ChatResponse(msgspec.Struct, frozen=True):
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str = ""


class Chunk(msgspec.Struct, frozen=True):
    """One piece of a streamed answer: text as it arrives; the last chunk carries
    the whole ``response`` (text, tool calls and usage) and no text."""

    text: str = ""
    response: ChatResponse | None = None


class ChatClient(Protocol):
    """What a component needs from a provider."""

    provider: str

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]: ...
