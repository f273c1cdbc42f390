"""Structured logging: JSON lines from structlog, with the request id on every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msgspec
import structlog

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _add_request_id(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    request_id = request_id_var.get()
    if request_id:
        event.setdefault("request_id", request_id)
    return event


_encoder = msgspec.json.Encoder(enc_hook=repr)


def _render_json(logger: object, method: str, event: structlog.typing.EventDict) -> bytes:
    # msgspec straight to bytes: a third of the cost of json.dumps + print per line.
    return _encoder.encode(event)


def _render_json_text(logger: object, method: str, event: structlog.typing.EventDict) -> str:
    return _encoder.encode(event).decode()


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        structlog.processors.format_exc_info,
    ]
    factory: Callable[..., Any]
    binary = getattr(sys.stderr, "buffer", None)
    if json and binary is not None:
        processors.append(_render_json)
        factory = structlog.BytesLoggerFactory(binary)
    elif json:  # stderr replaced by a text-only stream (tests, embedding applications)
        processors.append(_render_json_text)
        factory = structlog.PrintLoggerFactory(sys.stderr)
    else:
        processors.append(structlog.dev.ConsoleRenderer())
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
