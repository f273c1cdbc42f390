"""HTTP for provider clients: JSON posts and server-sent events, with retries.

Retries are bounded and back off exponentially (honouring ``Retry-After``) on
429, 5xx and connection failures. Every failure leaves this module as an
``UpstreamError`` naming the provider and its own message; the API key is
never part of it (provider messages that echo a key are redacted).

Provider calls go through our own lean HTTP/1.1 pool (``providers/http1.py``),
not the httpx client the other outbound components use: a model call is on
every LLM run's critical path, thousands at once. httpx spent 800-1300 us of
CPU per call on loopback and aiohttp about 300 us at 2,000 calls in flight,
which set how many runs one process could hold; the pool spends a fraction.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from flowserve.errors import PoolExhausted, UpstreamError
from flowserve.providers.http1 import (
    HttpFailure,
    Incomplete,
    Malformed,
    Pool,
    PoolFull,
    ReadTimedOut,
)

# What reading a decoded answer that is not the expected shape raises: a missing key,
# a list where a dict should be, a string where a number should be.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_MAX_RETRY_AFTER = 30.0
_MAX_MESSAGE = 500
# The longest line a streamed answer may send; a longer one is garbage.
MAX_LINE = 1 << 20

T = TypeVar("T")


def new_session(size: int = 0, wait: float = 10.0) -> Pool:
    """The shared connection pool for provider calls (``size`` 0: no bound but the runs').

    The proxy variables are read once, here, as httpx reads them; no redirects are
    followed (an answer elsewhere is not the provider's).
    """
    return Pool(size=size, wait=wait)


class Transport:
    """POSTs to one provider through the shared connection ``Pool``."""

    def __init__(
        self,
        client: Pool,
        provider: str,
        *,
        timeout: float = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        secrets: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.provider = provider
        # The longest silence while waiting for (more of) the answer.
        self.read_timeout = timeout
        self.connect_timeout = min(timeout, 10.0)
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.secrets = tuple(s for s in secrets if s)

    async def post_json(self, url: str, headers: Mapping[str, str], body: Any) -> Any:
        content = msgspec.json.encode(body)
        request_headers = _json_headers(headers)
        attempt = 0
        while True:
            try:
                answer = await self.client.post(
                    url,
                    request_headers,
                    content,
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                )
            except HttpFailure as exc:
                attempt = await self._retry(attempt, None, exc)
                continue
            except PoolFull as exc:
                raise self._pool_full(exc) from exc
            status = answer.status
            if status in RETRY_STATUSES and attempt < self.max_retries:
                attempt = await self._retry(attempt, answer.header("retry-after"))
                continue
            if status >= 400:
                raise self._status_error(status, answer.body)
            try:
                return msgspec.json.decode(answer.body)
            except (msgspec.DecodeError, UnicodeError) as exc:  # not JSON, or not UTF-8
                raise UpstreamError(f"{self.provider} answered with malformed JSON") from exc

    async def stream_events(
        self, url: str, headers: Mapping[str, str], body: Any
    ) -> AsyncGenerator[tuple[str, str], None]:
        """Yield ``(event, data)`` for each server-sent event of a streamed answer.

        The pool slot is held until the stream ends (or its reader stops), and given
        back between retries."""
        content = msgspec.json.encode(body)
        request_headers = {**_json_headers(headers), "Accept": "text/event-stream"}
        attempt = 0
        while True:
            try:
                answer = await self.client.open(
                    url,
                    request_headers,
                    content,
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                )
            except HttpFailure as exc:
                attempt = await self._retry(attempt, None, exc)
                continue
            except PoolFull as exc:
                raise self._pool_full(exc) from exc
            try:
                if answer.status in RETRY_STATUSES and attempt < self.max_retries:
                    retry_after = answer.header("retry-after")
                    self.client.release(answer)
                    attempt = await self._retry(attempt, retry_after)
                    continue
                try:
                    if answer.status >= 400:
                        raise self._status_error(answer.status, await answer.read())
                    parser = SseParser(self.provider)
                    async for chunk in answer.chunks():
                        for event in parser.feed(chunk):
                            yield event
                    for event in parser.close():
                        yield event
                except HttpFailure as exc:
                    raise self._transport_error(exc) from exc
                return
            finally:
                self.client.release(answer)

    async def post_parsed(
        self, url: str, headers: Mapping[str, str], body: Any, parse: Callable[[Any], T]
    ) -> T:
        """``post_json``, then ``parse`` the answer; an answer of the wrong shape is a 502."""
        return self.parse(parse, await self.post_json(url, headers, body))

    def parse(self, parse: Callable[[Any], T], payload: Any) -> T:
        """``parse(payload)``, an answer (or streamed event) of the wrong shape a 502."""
        try:
            return parse(payload)
        except SHAPE_ERRORS as exc:
            raise UpstreamError(f"{self.provider} answered in an unexpected shape: {exc}") from exc

    def decode_event(self, data: str) -> Any:
        """The JSON of one streamed event; garbage is an ``UpstreamError``."""
        try:
            return msgspec.json.decode(data)
        except (msgspec.DecodeError, UnicodeError) as exc:
            raise UpstreamError(f"{self.provider} streamed malformed JSON") from exc

    async def _retry(
        self, attempt: int, retry_after: str | None, exc: BaseException | None = None
    ) -> int:
        """Wait before the next attempt and return its number; with the retries spent,
        raise ``exc`` as an ``UpstreamError`` (callers check statuses themselves)."""
        if attempt >= self.max_retries:
            assert exc is not None
            raise self._transport_error(exc) from exc
        attempt += 1
        await asyncio.sleep(self._delay(attempt, retry_after))
        return attempt

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), _MAX_RETRY_AFTER)
            except ValueError:
                pass
        base: float = self.backoff * (2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def _status_error(self, status: int, body: bytes) -> UpstreamError:
        message = self._redact(_error_message(body))
        return UpstreamError(f"{self.provider} API error (HTTP {status}): {message}")

    def _pool_full(self, exc: PoolFull) -> PoolExhausted:
        return PoolExhausted("provider connection", "provider_pool_size", exc.size)

    def _transport_error(self, exc: BaseException) -> UpstreamError:
        if isinstance(exc, ReadTimedOut):
            return UpstreamError(f"{self.provider} API timed out after {self.read_timeout:g}s")
        if isinstance(exc, Incomplete) and exc.answered:
            return UpstreamError(
                f"{self.provider} closed the connection before the answer was complete"
            )
        if isinstance(exc, Malformed):
            return UpstreamError(f"{self.provider} answered with a malformed HTTP message")
        reason = self._redact(str(exc) or type(exc).__name__)
        return UpstreamError(f"{self.provider} API unreachable: {reason}")


def _json_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {"User-Agent": "flowserve", "Content-Type": "application/json", **headers}


def _error_message(body: bytes) -> str:
    """The provider's own error text: ``{"error": {"message": ...}}`` for both APIs."""
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeError):
        text = body.decode(errors="replace").strip()
        return text[:_MAX_MESSAGE] or "no error message"
    if isinstance(decoded, dict):
        error = decoded.get("error", decoded)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error.get("type")
            if message:
                return str(message)[:_MAX_MESSAGE]
        elif isinstance(error, str):
            return error[:_MAX_MESSAGE]
    return msgspec.json.encode(decoded).decode()[:_MAX_MESSAGE]


class SseParser:
    """Server-sent events from a body's chunks as they come: ``feed`` returns the
    ``(event, data)`` pairs each chunk completes, ``close`` the last unterminated one.

    Decoded leniently, as browsers read event streams: bytes that are not UTF-8
    become U+FFFD, and the event's JSON is then reported malformed. A line over
    ``MAX_LINE`` bytes is garbage, an ``UpstreamError``.
    """

    __slots__ = ("data", "event", "pending", "provider")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.pending = b""
        self.event = ""
        self.data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        pending = self.pending + chunk if self.pending else chunk
        if b"\n" not in chunk:
            if len(pending) > MAX_LINE:
                raise UpstreamError(f"{self.provider} streamed a line over {MAX_LINE} bytes")
            self.pending = pending
            return []
        *lines, self.pending = pending.split(b"\n")
        events: list[tuple[str, str]] = []
        for raw in lines:
            self._line(raw.decode(errors="replace").rstrip("\r"), events)
        return events

    def close(self) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = []
        if self.pending:
            self._line(self.pending.decode(errors="replace").rstrip("\r"), events)
            self.pending = b""
        self._line("", events)  # the end of the body ends an unterminated event
        return events

    def _line(self, line: str, events: list[tuple[str, str]]) -> None:
        if not line:
            if self.data:
                events.append((self.event or "message", "\n".join(self.data)))
            self.event, self.data = "", []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
