"""Message timestamps: Langflow's format, right to the microsecond across seconds."""

from __future__ import annotations

import pytest

from flowserve import clock
from flowserve.engine import types


@pytest.mark.parametrize(
    ("nanos", "expected"),
    [
        (1_700_000_000_123_456_789, "2023-11-14 22:13:20.123456 UTC"),
        (1_700_000_000_999_999_999, "2023-11-14 22:13:20.999999 UTC"),
        (1_700_000_001_000_000_000, "2023-11-14 22:13:21.000000 UTC"),
        (1_700_000_000_000_001_000, "2023-11-14 22:13:20.000001 UTC"),
    ],
)
def test_timestamps_are_langflows_format(
    monkeypatch: pytest.MonkeyPatch, nanos: int, expected: str
) -> None:
    monkeypatch.setattr(clock.time, "time_ns", lambda: nanos)
    assert types.now_timestamp() == expected
