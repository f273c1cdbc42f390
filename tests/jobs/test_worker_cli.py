"""``flowserve worker`` from the shell."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.jobs.support import ROOT


def test_worker_without_redis_explains_why_it_cannot_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVE_")}
    done = subprocess.run(
        [sys.executable, "-m", "flowserve.cli", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "FLOWSERVE_REDIS_URL" in done.stderr
