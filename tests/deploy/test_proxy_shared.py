"""nginx in front of two replicas sharing one PostgreSQL and one Redis: the production path.

Sessions continue across replicas, flows written through one are run by the
other, and webhook jobs accepted by a replica that is then stopped are still
finished (by its drain or by the other replica's worker).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_REDIS_URL
from tests.deploy.processes import Nginx, Replica
from tests.deploy.test_proxy import CLEAN_EXIT, FLOWS, Cluster

KEY = "fs_test_shared-cluster-key"
HEADERS = {"x-api-key": KEY}


@pytest.fixture
def shared_cluster(tmp_path: Path, clean_pg: str, redis_prefix: str) -> Iterator[Cluster]:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("prompt-echo.json", "webhook-echo.json"):
        (flows / name).write_bytes((FLOWS / name).read_bytes())
    env = {
        "FLOWSERVE_FLOWS_DIR": str(flows),
        "FLOWSERVE_DATABASE_URL": clean_pg,
        "FLOWSERVE_REDIS_URL": TEST_REDIS_URL,
        "FLOWSERVE_REDIS_PREFIX": redis_prefix,
        "FLOWSERVE_AUTH": "on",
        "FLOWSERVE_API_KEY": KEY,
        "FLOWSERVE_JOB_VISIBILITY_TIMEOUT": "3",
    }
    replicas = [Replica(tmp_path, f"shared-{i}", env=env) for i in (1, 2)]
    nginx: Nginx | None = None
    try:
        for replica in replicas:
            replica.wait_ready()
        nginx = Nginx(tmp_path, [r.port for r in replicas])
        yield Cluster(nginx, replicas, tmp_path / "unused-gate")
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()


def test_a_session_continues_across_replicas(shared_cluster: Cluster) -> None:
    first, second = shared_cluster.replicas
    body = {"input_value": "turn", "session_id": "across-replicas"}
    with httpx.Client(timeout=30, headers=HEADERS) as http:
        assert http.post(f"{first.url}/api/v1/run/prompt-echo", json=body).status_code == 200
        assert http.post(f"{second.url}/api/v1/run/prompt-echo", json=body).status_code == 200
        listed = http.get(
            f"{shared_cluster.nginx.url}/api/v1/monitor/messages",
            params={"session_id": "across-replicas"},
        )
    assert listed.status_code == 200
    senders = [m["sender"] for m in listed.json()]
    # Both turns, each the user's message and the answer, whichever replica is asked.
    assert senders.count("User") == 2
    assert senders.count("Machine") == 2


def test_a_flow_changed_through_one_replica_runs_changed_on_the_other(
    shared_cluster: Cluster,
) -> None:
    first, second = shared_cluster.replicas
    with httpx.Client(timeout=30, headers=HEADERS) as http:
        flow = http.get(f"{first.url}/api/v1/flows/", params={"endpoint_name": "prompt-echo"})
        assert flow.status_code == 200, flow.text
        found = flow.json()
        flow_id = (found[0] if isinstance(found, list) else found)["id"]
        before = http.post(f"{second.url}/api/v1/run/prompt-echo", json={"input_value": "q"})
        assert before.status_code == 200
        document = http.get(f"{first.url}/api/v1/flows/{flow_id}").json()
        for item in document["data"]["nodes"]:
            if item["id"] == "Prompt-t2oaK":
                item["data"]["node"]["template"]["template"]["value"] = "Changed: {question}"
        patched = http.patch(f"{first.url}/api/v1/flows/{flow_id}", json={"data": document["data"]})
        assert patched.status_code == 200, patched.text
        after = http.post(f"{second.url}/api/v1/run/prompt-echo", json={"input_value": "q"})
    text = after.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert text == "Changed: q"


def test_webhook_jobs_accepted_by_a_stopped_replica_still_finish(shared_cluster: Cluster) -> None:
    stopping, survivor = shared_cluster.replicas
    with httpx.Client(timeout=30, headers=HEADERS) as http:
        jobs = []
        for i in range(40):
            answer = http.post(f"{stopping.url}/api/v1/webhook/webhook-echo", json={"n": i})
            assert answer.status_code == 202, answer.text
            jobs.append(answer.json()["job_id"])
        stopping.terminate()
        assert stopping.wait_exit() in CLEAN_EXIT, stopping.logs()
        deadline = time.monotonic() + 60
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {
                job: http.get(f"{survivor.url}/api/v1/jobs/{job}").json()["status"] for job in jobs
            }
            if all(state == "succeeded" for state in states.values()):
                break
            time.sleep(0.5)
    assert all(state == "succeeded" for state in states.values()), states
