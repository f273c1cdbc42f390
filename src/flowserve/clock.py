"""Wall-clock timestamps with microseconds, formatted cheaply.

``strftime`` is most of the cost of a timestamp, and a busy server stamps
several things per request (messages, the access log line) within the same
second: ``SecondStamp`` formats the date and time of the current second once
and adds the microseconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SecondStamp:
    """``strftime(fmt)`` of the current UTC second, then ``.<microseconds>`` and ``suffix``."""

    __slots__ = ("_cached", "_format", "_suffix")

    def __init__(self, fmt: str, suffix: str) -> None:
        self._format = fmt
        self._suffix = suffix
        self._cached: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def now(self) -> str:
        second, nanos = divmod(time.time_ns(), 1_000_000_000)
        cached = self._cached
        if cached[0] != second:
            cached = (second, datetime.fromtimestamp(second, UTC).strftime(self._format))
            self._cached = cached  # one rebinding: threads see the old pair or the new
        return f"{cached[1]}.{nanos // 1000:06d}{self._suffix}"
