"""`flowserve migrate` and `flowserve import DIR`, as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import FLOWS, _serve_in_lifespan


def flowserve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowserve.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
        check=False,
    )


def test_migrate_then_migrate_again_is_a_no_op(tmp_path: Path) -> None:
    env = {"FLOWSERVE_SQLITE_PATH": str(tmp_path / "f.db"), "FLOWSERVE_LOG_JSON": "false"}
    first = flowserve("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_flows" in first.stdout
    second = flowserve("migrate", env=env)
    assert "schema up to date" in second.stdout


def test_import_is_idempotent_and_reports_rejected_files(
    pg_settings: Settings, tmp_path: Path
) -> None:
    directory = tmp_path / "repo"
    directory.mkdir()
    shutil.copy(FLOWS / "hello-world.json", directory)
    (directory / "broken.json").write_text(
        '{"data": {"nodes": [{"id": "x", "data": {"type": "Nope"}}], "edges": []}}'
    )
    env = {
        "FLOWSERVE_DATABASE_URL": pg_settings.database_url,
        "FLOWSERVE_REDIS_URL": pg_settings.redis_url,
        "FLOWSERVE_REDIS_PREFIX": pg_settings.redis_prefix,
    }
    first = flowserve("import", str(directory), env=env)
    assert first.returncode == 1
    assert "created: 1" in first.stdout
    assert "broken.json" in first.stderr
    (directory / "broken.json").unlink()
    second = flowserve("import", str(directory), env=env)
    assert second.returncode == 0, second.stderr
    assert "unchanged: 1" in second.stdout


async def test_restarting_with_the_same_flows_dir_keeps_versions(
    backend_settings: Settings,
) -> None:
    for _ in range(2):
        async for client in _serve_in_lifespan(create_app(backend_settings)):
            flows = (await client.get("/api/v1/flows/")).json()
    assert isinstance(client, httpx.AsyncClient)
    assert {f["version"] for f in flows} == {1}


async def test_seeding_a_langflow_export_with_a_foreign_folder_is_idempotent(
    settings: Settings, flows_dir: Path
) -> None:
    export = json.loads((FLOWS / "prompt-echo.json").read_text())
    export["folder_id"] = "0b0b0b0b-0000-4000-8000-000000000000"
    (flows_dir / "prompt-echo.json").write_text(json.dumps(export))
    for _ in range(2):
        async for client in _serve_in_lifespan(create_app(settings)):
            flow = (await client.get("/api/v1/flows/prompt-echo")).json()
    assert flow["version"] == 1
