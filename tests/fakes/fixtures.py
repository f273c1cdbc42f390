"""Pytest fixtures for the fake providers; conftest modules import them by name."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _anthropic_server() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()


@pytest.fixture
def fake_anthropic(_anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    _anthropic_server.reset()
    yield _anthropic_server
    _anthropic_server.reset()


_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        if name.lower() != "localhost":
            message = f"tests resolve no external name ({name})"
            raise socket.gaierror(socket.EAI_NONAME, message) from None
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_external_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must never reach a real external host, not even its DNS."""
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only_getaddrinfo)
