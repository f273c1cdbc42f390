"""``flowserve keys`` and ``flowserve serve`` as an operator runs them, in real processes:
keys created on the command line open the server, and no key ever reaches the logs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import FLOWS

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
BOOTSTRAP_KEY = "fs_bootstrap_" + "Q" * 40
FLOWSERVE = str(Path(sys.executable).with_name("flowserve"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(FLOWS / "hello-world.json", flows / "hello-world.json")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWSERVE_", "LANGFLOW_"))}
    return {
        **clean,
        "FLOWSERVE_SQLITE_PATH": str(tmp_path / "flowserve.db"),
        "FLOWSERVE_FLOWS_DIR": str(flows),
        "FLOWSERVE_LOG_LEVEL": "debug",
    }


async def flowserve(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        FLOWSERVE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Server:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output: list[str] = []
        self.url = ""

    async def start(self) -> None:
        assert self.process.stderr is not None
        while not self.url:
            line = (await self.process.stderr.readline()).decode()
            if not line:
                raise AssertionError("server exited:\n" + "".join(self.output))
            self.output.append(line)
            if match := re.search(r"running on (http://127\.0\.0\.1:\d+)", line):
                self.url = match.group(1)

    async def stop(self) -> str:
        self.process.terminate()
        out, err = await self.process.communicate()
        self.output.append(out.decode() + err.decode())
        return "".join(self.output)


@asynccontextmanager
async def serving(env: dict[str, str]) -> AsyncIterator[Server]:
    process = await asyncio.create_subprocess_exec(
        FLOWSERVE,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    server = Server(process)
    try:
        await server.start()
        yield server
    finally:
        if process.returncode is None:
            await server.stop()


async def test_keys_made_on_the_command_line_open_the_server(env: dict[str, str]) -> None:
    code, out, err = await flowserve(
        env, "keys", "create", "--name", "ci", "--scope", "execute", "--expires-in", "1d"
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("fs_")
    assert "not shown again" in err
    async with serving(env) as server, httpx.AsyncClient(base_url=server.url) as http:
        ran = await http.post(f"/api/v1/run/{HELLO}", json={}, headers={"x-api-key": key})
        assert ran.status_code == 200
        denied = await http.get("/api/v1/config", headers={"x-api-key": key})
        assert denied.status_code == 403
    code, out, _ = await flowserve(env, "keys", "list")
    assert code == 0
    assert "ci" in out
    assert key[:8] in out
    assert key not in out
    assert "active" in out


async def test_revoked_on_the_command_line_means_refused(env: dict[str, str]) -> None:
    code, out, _ = await flowserve(env, "keys", "create", "--json", "--scope", "read")
    assert code == 0
    created = json.loads(out)
    code, out, _ = await flowserve(env, "keys", "revoke", created["id"])
    assert code == 0
    assert "Revoked" in out
    code, out, _ = await flowserve(env, "keys", "list", "--json")
    assert json.loads(out)[0]["is_active"] is False
    assert created["api_key"] not in out
    code, _, err = await flowserve(env, "keys", "revoke", created["id"][:8])
    assert code == 2
    assert "not found" in err


async def test_serve_refuses_to_start_without_a_key(env: dict[str, str]) -> None:
    code, _, err = await flowserve(env, "serve", "--port", "0")
    assert code == 2
    assert "FLOWSERVE_API_KEY" in err
    assert "FLOWSERVE_AUTH=off" in err


async def test_serve_without_auth_warns_loudly(env: dict[str, str]) -> None:
    async with serving({**env, "FLOWSERVE_AUTH": "off"}) as server:
        pass
    output = "".join(server.output)
    assert "auth_disabled" in output
    assert "OPEN TO ANYONE" in output


async def test_key_material_never_reaches_the_logs(env: dict[str, str]) -> None:
    env = {**env, "FLOWSERVE_API_KEY": BOOTSTRAP_KEY}
    code, out, _ = await flowserve(env, "keys", "create", "--name", "cli", "--scope", "admin")
    assert code == 0
    cli_key = out.strip()
    wrong = "fs_wrong_" + "Z" * 40
    seen: list[str] = [BOOTSTRAP_KEY, cli_key, wrong]
    async with serving(env) as server, httpx.AsyncClient(base_url=server.url) as http:
        run = f"/api/v1/run/{HELLO}"
        for key in (BOOTSTRAP_KEY, cli_key, wrong):
            await http.post(run, json={}, headers={"x-api-key": key})
            await http.post(run, json={}, params={"x-api-key": key})
            await http.post(run, json={}, headers={"Authorization": f"Bearer {key}"})
        created = await http.post(
            "/api/v1/api_key/", json={"name": "api"}, headers={"x-api-key": BOOTSTRAP_KEY}
        )
        api_key = created.json()["api_key"]
        seen.append(api_key)
        await http.post(run, json={}, params={"x-api-key": api_key})
        await http.delete(
            f"/api/v1/api_key/{created.json()['id']}", headers={"x-api-key": BOOTSTRAP_KEY}
        )
        refused = await http.post(run, json={}, params={"x-api-key": api_key})
        assert refused.status_code == 401
        output = await server.stop()
    # The log did record those requests, the key creation and the revocation...
    paths = [_json_line(line).get("path") for line in output.splitlines()]
    assert paths.count(run) >= 11
    assert "api_key_created" in output
    assert "api_key_revoked" in output
    # ...and not one key, nor a long piece of one.
    for key in seen:
        assert key not in output
        assert key[8:24] not in output, "a key leaked into the logs"


def _json_line(line: str) -> dict[str, object]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
