"""Logging: one write per event-loop turn, ids stay unique and well-formed, access log switch."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from flowserve.app import create_app
from flowserve.engine.types import new_id
from flowserve.logs import (
    ACCESS_FIELDS,
    AccessLine,
    LineWriter,
    access_fields,
    configure_logging,
    request_id_var,
    write_access,
)
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"


class CountingStream(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)


async def test_lines_logged_in_one_loop_turn_are_written_in_one_write() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    writer.info(b'{"event":"a"}')
    writer.info(b'{"event":"b"}')
    assert stream.getvalue() == b""  # not yet: the turn is not over
    await asyncio.sleep(0)
    assert stream.getvalue() == b'{"event":"a"}\n{"event":"b"}\n'
    assert stream.writes == 1
    writer.error(b'{"event":"c"}')
    await asyncio.sleep(0)
    assert stream.getvalue().endswith(b'{"event":"c"}\n')
    assert stream.writes == 2


def test_lines_logged_outside_an_event_loop_are_written_at_once() -> None:
    stream = CountingStream()
    LineWriter(stream).warning(b'{"event":"started"}')
    assert stream.getvalue() == b'{"event":"started"}\n'


def test_new_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for value in ids[::97]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == value


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _serve_in_lifespan(create_app(settings)):
        yield client


async def test_each_request_logs_one_access_line_with_path_and_status(settings: Settings) -> None:
    async for client in _client(settings):
        with capture_logs() as events:
            response = await client.post(f"/api/v1/run/{HELLO}", json={"input_value": "hi"})
    assert response.status_code == 200
    access = [e for e in events if e["event"] == "request"]
    assert len(access) == 1
    assert access[0]["status"] == 200
    assert access[0]["path"] == f"/api/v1/run/{HELLO}"


async def test_access_log_can_be_turned_off(settings: Settings) -> None:
    async for client in _client(settings.replace(access_log=False)):
        with capture_logs() as events:
            response = await client.post(f"/api/v1/run/{HELLO}", json={"input_value": "hi"})
    assert response.status_code == 200
    assert response.headers["x-request-id"]  # ids are kept without the log line
    assert not [e for e in events if e["event"] == "request"]


def test_access_log_setting_reads_from_the_environment() -> None:
    assert Settings.from_mapping({"FLOWSERVE_ACCESS_LOG": "false"}).access_log is False
    assert Settings.from_mapping({}).access_log is True


def test_access_lines_written_directly_match_structlogs_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.TextIOWrapper(io.BytesIO(), write_through=True)
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        configure_logging("info", json=True)
        line = AccessLine("POST", "/api/v1/run/x", "/api/v1/run/{flow}", 200, 1.5, None, "http", "")
        token = request_id_var.set("abc123")
        try:
            assert write_access(line)
            structlog.get_logger("flowserve.access").info("request", **access_fields(line))
        finally:
            request_id_var.reset(token)
        direct, via_structlog = (
            json.loads(raw)
            for raw in stream.buffer.getvalue().splitlines()  # type: ignore[attr-defined]
        )
        assert direct.keys() == via_structlog.keys()
        assert direct["request_id"] == "abc123"
        assert direct["timestamp"][:16] == via_structlog["timestamp"][:16]
        assert {k: direct[k] for k in ACCESS_FIELDS} == {k: via_structlog[k] for k in ACCESS_FIELDS}

        with capture_logs():  # someone else's structlog configuration: no direct write
            assert not write_access(line)
        configure_logging("warning", json=True)  # info lines filtered: no direct write
        assert not write_access(line)
    finally:
        monkeypatch.undo()
        configure_logging("info", json=True)
