"""Server-sent event parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator

from flowserve.providers.transport import _parse_sse


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_sse_events_with_names_comments_and_multiline_data() -> None:
    events = [
        e
        async for e in _parse_sse(
            _lines(
                ": keep-alive", "event: ping", "data: {}", "", "data: a", "data: b", "", "data:tail"
            )
        )
    ]
    assert events == [("ping", "{}"), ("message", "a\nb"), ("message", "tail")]
