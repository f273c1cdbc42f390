"""In-process message store: the embedded default when no Redis is configured.

State lives in this process only and is lost on restart; several instances do
not share it. Same contract as ``RedisMessageStore``: sessions per
(flow, session id) expiring after a sliding TTL.

Messages are kept encoded (JSON bytes), as Redis keeps them: a bytes object
is one allocation the garbage collector never tracks, where a decoded message
is a dozen tracked objects. A long session of a busy embedded server would
otherwise make every full collection walk all its messages (pauses of tens of
milliseconds at 100k messages). Reads decode only what they return: a
session's history decodes just its last ``limit`` messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec

from flowserve.engine.types import Message
from flowserve.store.messages import matches, select_history, stamped


@dataclass(slots=True)
class _Session:
    ttl: float
    messages: list[bytes] = field(default_factory=list)
    expires_at: float = 0.0

    def touch(self, ttl: float | None = None) -> None:
        if ttl is not None:
            self.ttl = ttl
        self.expires_at = time.monotonic() + self.ttl


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Message).decode


class MemoryMessageStore:
    """Messages per (flow, session) with a sliding TTL, like the Redis store."""

    # Expired sessions nobody reads again are swept every this many appends.
    SWEEP_EVERY = 1000

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._appends = 0

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]

    def _live(self, key: tuple[str, str], ttl: float | None) -> _Session | None:
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires_at <= time.monotonic():
            del self._sessions[key]
            return None
        session.touch(ttl)
        return session

    def _keys(self, flow_id: str | None, session_id: str | None) -> list[tuple[str, str]]:
        if flow_id is not None and session_id is not None:  # a run's own session: no scan
            key = (flow_id, session_id)
            return [key] if key in self._sessions else []
        return [
            k
            for k in list(self._sessions)
            if (flow_id is None or k[0] == flow_id) and (session_id is None or k[1] == session_id)
        ]

    async def append(
        self, flow_id: str, session_id: str, messages: list[Message], ttl: int
    ) -> None:
        self._appends += 1
        if self._appends % self.SWEEP_EVERY == 0:
            self._sweep()
        key = (flow_id, session_id)
        session = self._live(key, ttl)
        if session is None:
            session = self._sessions[key] = _Session(ttl)
            session.touch()
        session.messages.extend(_encode(stamped(m, flow_id, session_id)) for m in messages)

    async def history(
        self,
        flow_id: str,
        session_id: str | None,
        *,
        limit: int,
        sender: str | None = None,
        order: str = "ASC",
        ttl: int,
    ) -> list[Message]:
        # One session, no filter: only its last ``limit`` messages can be returned.
        tail = limit if session_id is not None and sender is None and limit > 0 else 0
        found: list[Message] = []
        for key in self._keys(flow_id, session_id):
            session = self._live(key, ttl)
            if session is not None:
                stored = session.messages[-tail:] if tail else session.messages
                found.extend(_decode(raw) for raw in stored)
        return select_history(found, limit=limit, sender=sender, order=order)

    async def messages(
        self,
        *,
        flow_id: str | None = None,
        session_id: str | None = None,
        sender: str | None = None,
        sender_name: str | None = None,
        order: str = "ASC",
    ) -> list[Message]:
        found: list[Message] = []
        for key in self._keys(flow_id, session_id):
            session = self._live(key, None)
            if session is not None:
                decoded = (_decode(raw) for raw in session.messages)
                found.extend(m for m in decoded if matches(m, sender, sender_name))
        found.sort(key=lambda m: m.timestamp, reverse=order.upper() == "DESC")
        return found

    async def sessions(self, flow_id: str | None = None) -> list[str]:
        now = time.monotonic()
        return sorted(
            {k[1] for k in self._keys(flow_id, None) if self._sessions[k].expires_at > now}
        )

    async def delete_session(self, flow_id: str | None, session_id: str) -> int:
        return self._drop(self._keys(flow_id, session_id))

    async def delete_flow(self, flow_id: str) -> int:
        return self._drop(self._keys(flow_id, None))

    def _drop(self, keys: list[tuple[str, str]]) -> int:
        """Forget these sessions; how many live messages they held."""
        removed = 0
        now = time.monotonic()
        for key in keys:
            session = self._sessions.pop(key)
            if session.expires_at > now:
                removed += len(session.messages)
        return removed

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._sessions.clear()
