"""The client's model layer: Langflow's stream format, results, and the error tree."""

from __future__ import annotations

import inspect
import json

import pytest

import flowserve.errors as server_errors
from flowserve.client import (
    APIError,
    EndEvent,
    ErrorEvent,
    Event,
    EventParser,
    FlowNotFound,
    MessageEvent,
    NotFound,
    ServerError,
    StreamError,
    TokenEvent,
)
from flowserve.client import _exceptions as client_errors
from flowserve.client._models import api_error
from tests.conftest import RESPONSES

STREAM = (RESPONSES / "hello-world.stream.txt").read_bytes()


def test_langflows_recorded_stream_parses_into_message_then_end() -> None:
    parser = EventParser()
    events = [*parser.feed(STREAM), *parser.close()]
    assert [type(e) for e in events] == [MessageEvent, EndEvent]
    message, end = events
    assert isinstance(message, MessageEvent)
    assert isinstance(end, EndEvent)
    assert message.text == "Hello, World!"
    assert message.sender == "Machine"
    assert end.result.output == "Hello, World!"
    assert end.result.session_id == "44d4caa3-488a-4d5d-9a1d-20af07107439"


def test_events_split_across_arbitrary_chunks_parse_the_same() -> None:
    whole = EventParser().feed(STREAM)
    parser = EventParser()
    pieces = []
    for i in range(0, len(STREAM), 7):
        pieces.extend(parser.feed(STREAM[i : i + 7]))
    pieces.extend(parser.close())
    assert pieces == whole


def test_token_events_carry_chunks_that_join_to_the_text() -> None:
    chunks = ["Hel", "", "lo", "!"]
    raw = b"".join(
        json.dumps({"event": "token", "data": {"chunk": c, "id": "m1"}}).encode() + b"\n\n"
        for c in chunks
    )
    events = EventParser().feed(raw)
    assert all(isinstance(e, TokenEvent) for e in events)
    assert "".join(e.chunk for e in events if isinstance(e, TokenEvent)) == "Hello!"


def test_sse_data_prefix_crlf_and_unknown_events_are_tolerated() -> None:
    raw = b'event: x\r\ndata: {"event": "log", "data": {"x": 1}}\r\n\r\n: keep-alive\r\n\r\n'
    parser = EventParser()
    events = [*parser.feed(raw[:40]), *parser.feed(raw[40:]), *parser.close()]
    assert events == [Event(event="log", data={"x": 1})]


def test_error_event_keeps_the_detail_and_code() -> None:
    raw = b'{"event": "error", "data": {"error": "it broke", "code": "run_failed"}}\n\n'
    (event,) = EventParser().feed(raw)
    assert event == ErrorEvent(
        event="error",
        data={"error": "it broke", "code": "run_failed"},
        detail="it broke",
        code="run_failed",
    )


def test_a_malformed_event_raises_stream_error() -> None:
    with pytest.raises(StreamError, match="malformed event"):
        EventParser().feed(b"{not json\n\n")


def test_an_error_body_that_is_not_json_keeps_its_text() -> None:
    error = api_error(502, {"x-request-id": "r1"}, b"Bad Gateway from the proxy")
    assert error.status == 502
    assert error.detail == "Bad Gateway from the proxy"
    assert error.request_id == "r1"


def test_an_unknown_code_falls_back_to_its_status_category() -> None:
    error = api_error(404, {}, b'{"detail": "gone", "code": "brand_new_code"}')
    assert type(error) is NotFound
    assert error.code == "brand_new_code"
    assert isinstance(api_error(599, {}, b""), ServerError)


def test_every_server_error_has_a_client_mirror_with_the_same_status_and_code() -> None:
    missing = []
    for name, cls in inspect.getmembers(server_errors, inspect.isclass):
        if (
            not issubclass(cls, server_errors.FlowserveError)
            or cls.__module__ != server_errors.__name__
        ):
            continue
        mirror = api_error(cls.status, {}, json.dumps({"detail": "d", "code": cls.code}).encode())
        assert isinstance(mirror, APIError)
        assert mirror.status == cls.status
        assert mirror.code == cls.code
        if type(mirror).code != cls.code and cls is not server_errors.FlowserveError:
            missing.append(name)
    assert not missing, f"client classes missing for server errors: {missing}"
    assert client_errors.error_class(404, "flow_not_found") is FlowNotFound
