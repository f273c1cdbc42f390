"""Structured logging: JSON lines from structlog, with the request id on every line."""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msgspec
import structlog

from flowserve.clock import SecondStamp

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


class LineWriter:
    """A structlog logger writing lines to a binary stream, one write per event-loop turn.

    Inside a running event loop, lines are queued and written together by a
    callback scheduled with ``call_soon``: under load that is one system call
    for all the requests served in the same turn instead of one per line, and
    no line waits longer than the turn. Outside a loop (threads, start-up,
    shutdown) each line is written at once; whatever is queued at exit is
    written by an ``atexit`` hook.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._scheduled = False
        self._lock = threading.Lock()
        atexit.register(self.flush)

    def msg(self, message: bytes) -> None:
        with self._lock:
            self._pending.append(message + b"\n")
            if self._scheduled:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            self._scheduled = loop is not None
        if loop is None:
            self.flush()
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            self._scheduled = False
            if not self._pending:
                return
            data = b"".join(self._pending)
            self._pending.clear()
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):  # closed or broken stream: nothing better to do
                pass

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


class AccessLine(msgspec.Struct, omit_defaults=False):
    """One access-log line, the same keys structlog would write for ``log.info("request")``."""

    method: str
    path: str
    route: str
    status: int
    duration_ms: float
    client: str | None
    scheme: str | None
    user_agent: str
    event: str = "request"
    level: str = "info"
    timestamp: str = ""
    request_id: str | None = None


# An access line's own keys (the rest are added by the logging setup).
ACCESS_FIELDS = (
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "client",
    "scheme",
    "user_agent",
)


def access_fields(line: AccessLine) -> dict[str, Any]:
    """The line's own keys, for logging it through structlog."""
    return {name: getattr(line, name) for name in ACCESS_FIELDS}


# Where access lines go without structlog's processor chain (about 10 us a line in
# the event loop, a tenth of a served request): set by configure_logging when lines
# are JSON to a binary stream at level info or below; else None (use structlog).
_access_writer: LineWriter | None = None
_configured: list[Any] | None = None  # the processor list configure_logging gave structlog
# ``2026-11-23T12:28:30.129729Z``, as structlog's ISO UTC timestamper writes it.
_iso_now = SecondStamp("%Y-%m-%dT%H:%M:%S", "Z").now


def write_access(line: AccessLine) -> bool:
    """Write an access line straight to the log stream; False when logging is configured
    otherwise (the caller then logs through structlog)."""
    writer = _access_writer
    # Anyone who reconfigured structlog since (structlog.testing.capture_logs, an
    # embedding application) gets the line through structlog.
    processors: list[Any] = structlog.get_config()["processors"]
    if writer is None or processors is not _configured or processors[-1] is not _render_json:
        return False
    line.timestamp = _iso_now()
    request_id = request_id_var.get()
    if request_id:
        line.request_id = request_id
    writer.msg(_access_encoder.encode(line))
    return True


_access_encoder = msgspec.json.Encoder()


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        structlog.processors.format_exc_info,
    ]
    factory: Callable[..., Any]
    binary = getattr(sys.stderr, "buffer", None)
    global _access_writer, _configured
    _access_writer = None
    if json and binary is not None:
        processors.append(_render_json)
        writer = LineWriter(binary)
        factory = lambda *args: writer  # noqa: E731
        if _LEVELS[level] <= logging.INFO:
            _access_writer = writer
    elif json:  # stderr replaced by a text-only stream (tests, embedding applications)
        processors.append(_render_json_text)
        factory = structlog.PrintLoggerFactory(sys.stderr)
    else:
        processors.append(structlog.dev.ConsoleRenderer())
        factory = structlog.PrintLoggerFactory(sys.stderr)
    _configured = processors
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
