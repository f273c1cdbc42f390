"""What every message store does the same way: stamping, filtering, ordering."""

from __future__ import annotations

import msgspec

from flowserve.engine.types import Message, new_id, now_timestamp


def stamped(message: Message, flow_id: str, session_id: str) -> Message:
    """The message as stored: with an id, a timestamp, and its flow and session."""
    if message.id and message.timestamp and message.flow_id and message.session_id:
        return message
    return msgspec.structs.replace(
        message,
        id=message.id or new_id(),
        timestamp=message.timestamp or now_timestamp(),
        flow_id=message.flow_id or flow_id,
        session_id=message.session_id or session_id,
    )


def matches(message: Message, sender: str | None, sender_name: str | None) -> bool:
    return (sender is None or message.sender == sender) and (
        sender_name is None or message.sender_name == sender_name
    )


def select_history(
    messages: list[Message], *, limit: int, sender: str | None, order: str
) -> list[Message]:
    """The last ``limit`` messages by timestamp (optionally of one sender), in ``order``."""
    found = [m for m in messages if sender is None or m.sender == sender]
    found.sort(key=lambda m: m.timestamp)
    found = found[-limit:] if limit > 0 else []
    return found if order.upper() == "ASC" else found[::-1]
