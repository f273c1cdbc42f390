"""The flowserve command as a user runs it: real processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FLOWS

ROOT = Path(__file__).parents[1]
FLOWSERVE = [sys.executable, "-m", "flowserve.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOWSERVE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_run_prints_the_flow_answer() -> None:
    done = run_cli("run", str(FLOWS / "prompt-echo.json"), "--input", "what is 2+2?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "You are terse. Question: what is 2+2?"


def test_run_applies_tweaks_and_prints_json() -> None:
    tweaks = json.dumps({"Prompt-t2oaK": {"template": "Tweaked: {question}"}})
    done = run_cli(
        "run", str(FLOWS / "prompt-echo.json"), "--input", "x", "--tweaks", tweaks, "--json"
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "Tweaked: x"


def test_run_reports_bad_tweaks_without_a_traceback() -> None:
    done = run_cli("run", str(FLOWS / "prompt-echo.json"), "--tweaks", '{"Nope": {"a": 1}}')
    assert done.returncode == 2
    assert "tweak 'Nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_reports_tweaks_that_are_not_json_without_a_traceback() -> None:
    done = run_cli("run", str(FLOWS / "prompt-echo.json"), "--tweaks", "{bad")
    assert done.returncode == 2
    assert "--tweaks is not valid JSON" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_typo_in_a_setting_is_refused() -> None:
    done = run_cli("run", str(FLOWS / "prompt-echo.json"), env={"FLOWSERVE_PROT": "1"})
    assert done.returncode == 2
    assert "FLOWSERVE_PROT" in done.stderr


DEV_KEY = "fs_dev_readme-test-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`flowserve serve` in its own process, on the repository's ./flows directory."""
    port = free_port()
    env = {
        **os.environ,
        "FLOWSERVE_API_KEY": DEV_KEY,
        "FLOWSERVE_PORT": str(port),
        "FLOWSERVE_SQLITE_PATH": str(tmp_path / "flowserve.db"),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*FLOWSERVE, "serve", "--flows-dir", str(ROOT / "flows")],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail("flowserve serve did not start: " + log.read_text())
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_readme_curl_example_works_as_written(served: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(curl .*?)\n```", readme, re.S)
    assert block, "README has no curl example"
    command = block.group(1).replace("http://127.0.0.1:7860", served)
    # As `make run` leaves it: the dev key in .flowserve-dev-key of the working directory.
    (tmp_path / ".flowserve-dev-key").write_text(DEV_KEY + "\n")
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "Hello, World!"
