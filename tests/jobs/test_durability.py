"""Nothing acknowledged is lost: a worker process killed mid-run, another takes over.

Real Redis, real ``flowserve worker`` processes (with the test registry, for
the stand-in Webhook and a slow component), the API in this process with no
worker of its own, and a loopback receiver that counts each job's
``flow_completed`` event: the side effect a caller would notice.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from flowserve.app import create_app
from flowserve.engine.types import json_block
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan
from tests.jobs.conftest import REDIS_URL
from tests.jobs.support import (
    SLOW,
    Receiver,
    ReceiverServer,
    slow_flow,
    start_worker,
    webhook_registry,
    write_flow,
)
from tests.jobs.test_event_webhooks import make_secret, subscribe
from tests.jobs.test_webhooks import wait_final, wait_status

JOBS = 200
VISIBILITY = 1.5


def worker_settings(prefix: str, flows_dir: Path) -> dict[str, str]:
    return {
        "FLOWSERVE_REDIS_URL": REDIS_URL,
        "FLOWSERVE_REDIS_PREFIX": prefix,
        "FLOWSERVE_FLOWS_DIR": str(flows_dir),
        "FLOWSERVE_JOB_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "FLOWSERVE_JOB_CONCURRENCY": "25",
        "FLOWSERVE_JOB_RETRY_BASE": "0.05",
        "FLOWSERVE_JOB_RETRY_MAX": "0.2",
        "FLOWSERVE_WEBHOOK_ALLOWLIST": "127.0.0.1",
        "FLOWSERVE_LOG_LEVEL": "warning",
        "FLOWSERVE_LOG_JSON": "false",
    }


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    return process.returncode


async def statuses(client: httpx.AsyncClient, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    async def one(job_id: str) -> dict[str, Any]:
        response = await client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200
        job: dict[str, Any] = response.json()
        return job

    jobs = await asyncio.gather(*(one(j) for j in job_ids))
    return {job["job_id"]: job for job in jobs}


async def test_jobs_of_a_killed_worker_all_succeed_exactly_once(
    settings: Settings, flows_dir: Path, redis_prefix: str, tmp_path: Path
) -> None:
    write_flow(flows_dir, "slow.json", slow_flow(0.3))
    api_settings = settings.replace(
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        job_worker=False,
        job_visibility_timeout=VISIBILITY,
        webhook_allowlist="127.0.0.1",
    )
    worker_env = worker_settings(redis_prefix, flows_dir)
    log = tmp_path / "workers.log"
    rec = Receiver(secret=make_secret())
    app = create_app(api_settings, registry=webhook_registry())
    first = start_worker(worker_env, log)
    second = None
    try:
        async with ReceiverServer(rec) as receiver:
            async for client in _serve_in_lifespan(app):
                await subscribe(client, SLOW, receiver.url, rec.secret, ["flow_completed"])
                accepted = await asyncio.gather(
                    *(client.post("/api/v1/webhook/slow", json={"n": n}) for n in range(JOBS))
                )
                assert {r.status_code for r in accepted} == {202}, [
                    r.text for r in accepted if r.status_code != 202
                ][:1]
                job_ids = [r.json()["job_id"] for r in accepted]
                assert len(set(job_ids)) == JOBS

                # Kill the worker once it has finished some jobs and holds others mid-run.
                async with asyncio.timeout(60):
                    while True:
                        jobs = await statuses(client, job_ids)
                        by_status = defaultdict(list)
                        for job in jobs.values():
                            by_status[job["status"]].append(job["job_id"])
                        if len(by_status["succeeded"]) >= 20 and by_status["running"]:
                            break
                        await asyncio.sleep(0.05)
                first.send_signal(signal.SIGKILL)
                first.wait()
                # What the dead worker held: still "running" now that nothing runs them
                # (read after the kill: a job seen running before it may have finished).
                after_kill = await statuses(client, job_ids)
                held = {j for j, job in after_kill.items() if job["status"] == "running"}
                assert held

                second = start_worker(worker_env, log)
                async with asyncio.timeout(90):
                    while True:
                        jobs = await statuses(client, job_ids)
                        if all(j["status"] in ("succeeded", "failed") for j in jobs.values()):
                            break
                        await asyncio.sleep(0.3)
                await rec.wait_for(lambda: len(rec.unique()) >= JOBS, within=30)

        assert {j["status"] for j in jobs.values()} == {"succeeded"}, log.read_text()[-3000:]
        # The jobs the dead worker held were taken over and run again.
        assert {jobs[j]["attempts"] for j in held} == {2}
        assert all(jobs[j]["result"] is not None for j in job_ids)
        sample = jobs[job_ids[7]]["result"]["outputs"][0]["outputs"][0]["results"]["message"]
        assert sample["text"] == json_block({"n": 7})
        # The side effect: each job's completion announced once (one message id per job).
        assert not rec.rejected
        messages: dict[str, set[str]] = defaultdict(set)
        for item in rec.received:
            messages[item.body["job_id"]].add(item.headers["webhook-id"])
        assert set(messages) == set(job_ids)
        assert {len(ids) for ids in messages.values()} == {1}
    finally:
        stop(first)
        if second is not None:
            assert stop(second) == 0, log.read_text()[-3000:]


async def test_a_run_in_another_process_is_cancelled_through_redis(
    settings: Settings, flows_dir: Path, redis_prefix: str, tmp_path: Path
) -> None:
    write_flow(flows_dir, "slow.json", slow_flow(120))
    api_settings = settings.replace(
        redis_url=REDIS_URL, redis_prefix=redis_prefix, job_worker=False
    )
    log = tmp_path / "worker.log"
    worker = start_worker(worker_settings(redis_prefix, flows_dir), log)
    try:
        app = create_app(api_settings, registry=webhook_registry())
        async for client in _serve_in_lifespan(app):
            response = await client.post("/api/v1/webhook/slow", json={})
            location = response.headers["location"]
            await wait_status(client, location, "running")
            assert (await client.delete(location)).status_code == 202
            job = await wait_final(client, location, within=10)
        assert job["status"] == "cancelled"
        assert job["attempts"] == 1
    finally:
        assert stop(worker) == 0, log.read_text()[-3000:]
