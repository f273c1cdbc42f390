"""The values that flow along edges: Message, Data, and the token usage of a run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec


def now_timestamp() -> str:
    """Langflow's message timestamp format: ``2026-11-23 04:58:58.928699 UTC``."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def new_id() -> str:
    return str(uuid.uuid4())


class TokenUsage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
        )


class Source(msgspec.Struct, frozen=True):
    """Which component produced a message's content (Langflow's ``properties.source``)."""

    id: str | None = None
    display_name: str | None = None
    source: str | None = None


class Message(msgspec.Struct, kw_only=True):
    """A chat message, Langflow's ``Message``: what ChatInput, Prompt and models emit."""

    text: str
    sender: str = "Machine"
    sender_name: str = "AI"
    session_id: str = ""
    context_id: str = ""
    flow_id: str = ""
    run_id: str = ""
    id: str = ""
    timestamp: str = ""
    files: list[str] = msgspec.field(default_factory=list)
    error: bool = False
    edit: bool = False
    category: str = "message"
    state: str = "complete"
    source: Source = Source()
    usage: TokenUsage | None = None

    def __str__(self) -> str:
        return self.text


class Data(msgspec.Struct):
    """Langflow's ``Data``/``JSON``: a dict with a key naming its text."""

    data: dict[str, Any]
    text_key: str = "text"

    def get_text(self) -> str:
        value = self.data.get(self.text_key)
        return value if isinstance(value, str) else ""


_json_encoder = msgspec.json.Encoder()


def to_text(value: Any) -> str:
    """Render any edge value as text, the way a chat message would show it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Message):
        return value.text
    if isinstance(value, Data):
        return json_block(value.data)
    if isinstance(value, list):
        return "\n".join(to_text(item) for item in value)
    if isinstance(value, dict):
        return json_block(value)
    return str(value)


def json_block(value: Any) -> str:
    """A JSON value as a fenced ```json block, as Langflow's ChatOutput renders Data."""
    pretty = msgspec.json.format(_json_encoder.encode(value), indent=4).decode()
    return f"```json\n{pretty}\n```"
