"""The values that flow along edges: Message, Data, and the token usage of a run."""

from __future__ import annotations

import os
from typing import Any

import msgspec

from flowserve.clock import SecondStamp

# Langflow's message timestamp format: ``2026-11-23 04:58:58.928699 UTC``.
now_timestamp = SecondStamp("%Y-%m-%d %H:%M:%S", " UTC").now


_ID_BYTES = 16
_ID_BATCH = 256
_random = bytearray()


def new_id() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` but about 3x cheaper.

    The randomness comes from ``os.urandom`` like ``uuid4``'s, read 4 KiB at a
    time instead of one system call per id: a run makes several ids (run,
    message, request) and under load the calls showed up as 7% of the CPU.
    """
    if not _random:
        _random.extend(os.urandom(_ID_BYTES * _ID_BATCH))
    raw = _random[-_ID_BYTES:]
    del _random[-_ID_BYTES:]
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[(raw[8] >> 4) & 3]}{h[17:20]}-{h[20:]}"


def _forget_random() -> None:
    # A forked child must not hand out the ids its parent still holds.
    _random.clear()


os.register_at_fork(after_in_child=_forget_random)


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
