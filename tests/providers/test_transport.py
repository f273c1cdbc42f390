"""Server-sent event parsing, fed chunk by chunk as a body arrives."""

from __future__ import annotations

import pytest

from flowserve.errors import UpstreamError
from flowserve.providers.transport import MAX_LINE, SseParser

STREAM = b": keep-alive\nevent: ping\ndata: {}\n\ndata: a\r\ndata: b\n\ndata:tail"
EXPECTED = [("ping", "{}"), ("message", "a\nb"), ("message", "tail")]


def _parse(chunks: list[bytes]) -> list[tuple[str, str]]:
    parser = SseParser("OpenAI")
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    return events + parser.close()


def test_sse_events_with_names_comments_crlf_and_multiline_data() -> None:
    assert _parse([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16])
def test_events_split_anywhere_between_chunks_parse_the_same(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert _parse(chunks) == EXPECTED


def test_an_event_is_handed_on_as_soon_as_its_blank_line_arrives() -> None:
    parser = SseParser("OpenAI")
    assert parser.feed(b'data: {"a": 1}\n') == []
    assert parser.feed(b"\n") == [("message", '{"a": 1}')]


def test_a_line_longer_than_the_limit_is_an_upstream_error() -> None:
    parser = SseParser("OpenAI")
    assert parser.feed(b"x" * (MAX_LINE // 2)) == []  # long, but not too long yet
    with pytest.raises(UpstreamError, match="OpenAI streamed a line over"):
        parser.feed(b"x" * (MAX_LINE // 2 + 1))


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert _parse([b"data: \xff\n\n"]) == [("message", "\ufffd")]
