"""``make soak`` keeps working: a short soak through the same code path as the long one.

The tool starts the production shape (flowserve on Postgres + Redis with auth, a
separate worker, the fake model) and drives every kind of call; here it runs for
20 s and its JSON report must show every operation exercised and no unexpected
error. Leak verdicts need minutes of samples, so only their presence is checked;
the judging itself is checked on series with a known shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def soak_module() -> Iterator[Any]:
    sys.path.insert(0, str(BENCH))
    try:
        import soak

        yield soak
    finally:
        sys.path.remove(str(BENCH))


def test_short_soak_exercises_every_operation_without_unexpected_errors(tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    argv = [sys.executable, str(BENCH / "soak.py"), "--seconds", "20", "--concurrency", "4"]
    finished = subprocess.run(
        [*argv, "--interval", "1", "--json", str(report_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert report_path.exists(), finished.stderr[-3000:]
    report = json.loads(report_path.read_text())
    printed = finished.stdout
    assert report["unexpected"] == 0, printed
    assert report["missing_ops"] == [], printed
    assert all(op["count"] > 0 for op in report["ops"].values()), printed
    assert {"webhook job", "run stream=true", "flow put", "run llm (fake model)"} <= set(
        report["ops"]
    )
    assert report["ops"]["webhook job"]["statuses"].keys() == {"succeeded"}
    for resource in ("server.rss_mb", "server.fds", "worker.rss_mb", "pg_backends"):
        assert report["resources"][resource]["max"] > 0, resource
    assert "redis_clients" in report["resources"]
    assert report["samples"] >= 2
    # The report is printed for people too: both tables and a verdict line.
    assert "| operation " in printed
    assert "| resource " in printed
    assert "soak PASS" in printed or "soak FAIL" in printed


def test_growth_past_the_tolerance_is_judged_a_leak(soak_module: Any) -> None:
    times = [float(t) for t in range(40)]
    flat = [100.0 + (t % 3) for t in range(40)]
    growing = [100.0 + t for t in range(40)]  # 1 MB per sample: 30 MB over the run
    assert not soak_module.judge_series("server.rss_mb", times, flat)["leak"]
    judged = soak_module.judge_series("server.rss_mb", times, growing)
    assert judged["leak"]
    assert judged["slope_per_min"] == pytest.approx(60.0)
    assert not soak_module.judge_series("server.tcp_http_in", times, growing)["leak"]
