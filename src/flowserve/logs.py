"""Structured logging: JSON lines from structlog, with the request id on every line.

``LOG_BUFFER`` keeps the process's last lines for the log retrieval routes
(``GET /logs``, ``/logs-stream``) when ``FLOWSERVE_LOG_BUFFER_SIZE`` is above 0.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from collections import deque
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


class LogBuffer:
    """A bounded ring of this process's last log lines (Langflow's ``SizedLogBuffer``).

    Each line is kept as ``(seq, epoch_ms, text)``: ``text`` is the JSON line as it
    was logged, ``epoch_ms`` when it was kept, made strictly increasing so lines keyed
    by it (Langflow's ``{timestamp: line}`` answers) never collide, ``seq`` a counter
    that streams follow. Any thread may write; capacity 0 keeps nothing.
    """

    def __init__(self, capacity: int = 0) -> None:
        self._lines: deque[tuple[int, int, str]] = deque(maxlen=max(capacity, 1))
        self.capacity = capacity
        self._seq = 0
        self._last_ms = 0
        self._lock = threading.Lock()

    def resize(self, capacity: int) -> None:
        with self._lock:
            self.capacity = capacity
            self._lines = deque(self._lines if capacity else (), maxlen=max(capacity, 1))

    def append(self, text: str) -> None:
        if not self.capacity:
            return
        with self._lock:
            now = max(int(time.time() * 1000), self._last_ms + 1)
            self._last_ms = now
            self._seq += 1
            self._lines.append((self._seq, now, text))

    def _snapshot(self) -> list[tuple[int, int, str]]:
        with self._lock:
            return list(self._lines)

    def last(self, count: int) -> dict[int, str]:
        lines = self._snapshot()[-count:] if count > 0 else []
        return {ms: text for _, ms, text in lines}

    def before(self, timestamp: int, count: int) -> dict[int, str]:
        """Up to ``count`` lines before the first one at or after ``timestamp`` (the
        last ``count`` when there is none)."""
        lines = self._snapshot()
        index = next((i for i, (_, ms, _) in enumerate(lines) if ms >= timestamp), None)
        if index is None:
            return self.last(count)
        return {ms: text for _, ms, text in lines[max(index - count, 0) : index]}

    def after(self, timestamp: int, count: int) -> dict[int, str]:
        """The first ``count`` lines at or after ``timestamp``."""
        chosen = [(ms, text) for _, ms, text in self._snapshot() if ms >= timestamp][:count]
        return dict(chosen)

    def newest(self) -> int:
        """The ``seq`` of the last line kept so far (0 before any)."""
        with self._lock:
            return self._seq

    def since(self, seq: int) -> list[tuple[int, int, str]]:
        """Lines kept after ``seq`` (still in the buffer), oldest first."""
        return [line for line in self._snapshot() if line[0] > seq]


LOG_BUFFER = LogBuffer()


def _keep(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # Encoded once more only while the buffer is on; the renderer encodes it for output.
    if LOG_BUFFER.capacity:
        LOG_BUFFER.append(_encoder.encode(event).decode())
    return event


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
    encoded = _access_encoder.encode(line)
    writer.msg(encoded)
    if LOG_BUFFER.capacity:
        LOG_BUFFER.append(encoded.decode())
    return True


_access_encoder = msgspec.json.Encoder()


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        structlog.processors.format_exc_info,
        _keep,
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
