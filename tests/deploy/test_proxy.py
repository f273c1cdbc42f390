"""nginx (deploy/nginx.conf) in front of two real ``flowserve serve`` replicas on loopback.

Both replicas use the embedded store with the same flows directory.
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.components import through, write_flow
from tests.deploy.processes import Nginx, Replica, wait_until
from tests.helpers import node

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
# uvicorn re-raises SIGTERM once it has drained, as systemd and Kubernetes expect.
CLEAN_EXIT = (0, -signal.SIGTERM)
FLOWS = Path(__file__).resolve().parents[1] / "fixtures" / "flows"


@dataclass
class Cluster:
    nginx: Nginx
    replicas: list[Replica]
    gate: Path  # creating this file lets held runs finish


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello-world.json").write_bytes((FLOWS / "hello-world.json").read_bytes())
    gate = tmp_path / "gate-open"
    write_flow(flows, through("held", node("TestFileGate-b", "TestFileGate", path=str(gate))))
    write_flow(flows, through("pause", node("TestPause-b", "TestPause", seconds="0.2")))
    env = {"FLOWSERVE_FLOWS_DIR": str(flows), "FLOWSERVE_STREAM_HEARTBEAT": "0.2"}
    replicas = [Replica(tmp_path, f"replica-{i}", env=env) for i in (1, 2)]
    nginx: Nginx | None = None
    try:
        for replica in replicas:
            replica.wait_ready()
        nginx = Nginx(tmp_path, [r.port for r in replicas])
        yield Cluster(nginx, replicas, gate)
    finally:
        gate.touch()
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()


def upstreams(nginx: Nginx) -> Counter[str]:
    return Counter(json.loads(line)["upstream"] for line in nginx.access_log())


def test_runs_go_through_nginx_to_both_replicas(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.nginx.url, timeout=30) as http:
        for _ in range(6):
            response = http.post(f"/api/v1/run/{HELLO}", json={"input_value": "hi"})
            assert response.status_code == 200
            message = response.json()["outputs"][0]["outputs"][0]["results"]["message"]
            assert message["text"] == "Hello, World!"
        # nginx set a request id and flowserve echoed it.
        assert response.headers["x-request-id"]
    used = upstreams(cluster.nginx)
    assert len(used) == 2, f"both replicas should serve: {used}"


def test_stream_flushes_events_and_heartbeats_through_nginx(cluster: Cluster) -> None:
    with (
        httpx.Client(base_url=cluster.nginx.url, timeout=30) as http,
        http.stream("POST", "/api/v1/run/held?stream=true", json={"input_value": "hello"}) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        lines = resp.iter_lines()
        first = json.loads(next(lines))
        # The run is held at the gate, yet the user's message came through the proxy.
        assert first["event"] == "add_message"
        assert first["data"]["text"] == "hello"
        assert not cluster.gate.exists()
        # While the run is quiet, heartbeats (bare newlines) keep coming through too.
        blank = 0
        while blank < 4:
            line = next(lines)
            assert not line.strip(), f"expected only heartbeats while held, got {line!r}"
            blank += 1
        cluster.gate.touch()
        rest = [json.loads(line) for line in lines if line.strip()]
    assert [event["event"] for event in rest] == ["add_message", "end"]
    # With no session_id the session is the flow id (a UUID derived from "held").
    assert rest[-1]["data"]["result"]["session_id"] == rest[0]["data"]["flow_id"]


def test_stopping_a_replica_under_load_fails_no_request(cluster: Cluster) -> None:
    """SIGTERM one replica mid-load: its in-flight runs finish, new requests go to the other.

    Nothing fails: requests that never reached the stopping replica are
    retried by nginx (even POSTs: the connection was refused), and the ones it
    had received are finished before it exits.
    """
    stopping = cluster.replicas[0]
    failures: list[str] = []
    done = Counter[str]()
    lock = threading.Lock()
    halfway = threading.Event()

    def client(index: int) -> None:
        with httpx.Client(base_url=cluster.nginx.url, timeout=30) as http:
            for i in range(30):
                if index == 0 and i == 10:
                    halfway.set()
                if i % 2:
                    response = http.get("/api/v1/version")
                else:
                    response = http.post("/api/v1/run/pause", json={"input_value": f"{index}-{i}"})
                with lock:
                    done[response.request.method] += 1
                    if response.status_code != 200:
                        failures.append(f"{response.request.method} {response.status_code}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(client, index) for index in range(6)]
        halfway.wait(timeout=60)
        stopping.terminate()
        for future in futures:
            future.result()
    assert not failures, f"{len(failures)} failed requests: {Counter(failures)}"
    assert stopping.wait_exit() in CLEAN_EXIT, stopping.logs()
    assert done == {"GET": 90, "POST": 90}
    # The stopped replica had served part of the load before it left.
    by_upstream = upstreams(cluster.nginx)
    assert by_upstream[f"127.0.0.1:{stopping.port}"] > 0
    # The survivor carries everything now.
    with httpx.Client(base_url=cluster.nginx.url, timeout=30) as http:
        for _ in range(4):
            assert http.post("/api/v1/run/pause", json={}).status_code == 200


def test_stream_in_flight_finishes_when_its_replica_is_stopped(cluster: Cluster) -> None:
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST", f"{cluster.replicas[0].url}/api/v1/run/held?stream=true", json={}
        ) as resp,
    ):
        lines = resp.iter_lines()
        assert json.loads(next(lines))["event"] == "add_message"
        cluster.replicas[0].terminate()

        def refusing() -> bool:
            try:
                httpx.get(f"{cluster.replicas[0].url}/health", timeout=1)
            except httpx.ConnectError:
                return True
            except httpx.RemoteProtocolError:
                # Accepted just before the listener closed, then dropped by the drain.
                return False
            return False

        # Draining: no new connections, while the held stream stays open.
        wait_until(refusing, "the stopping replica refusing new connections")
        assert cluster.replicas[0].process.poll() is None
        cluster.gate.touch()
        events = [json.loads(line)["event"] for line in lines if line.strip()]
    assert events == ["add_message", "end"]
    assert cluster.replicas[0].wait_exit() in CLEAN_EXIT


def test_api_under_a_prefix_behind_nginx(tmp_path: Path) -> None:
    """The documented prefix recipe: nginx strips /flowserve, links carry it again."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello-world.json").write_bytes((FLOWS / "hello-world.json").read_bytes())
    replica = Replica(
        tmp_path,
        "prefixed",
        env={"FLOWSERVE_FLOWS_DIR": str(flows), "FLOWSERVE_ROOT_PATH": "/flowserve"},
    )
    nginx: Nginx | None = None
    try:
        replica.wait_ready()
        nginx = Nginx(tmp_path, [replica.port, replica.port], prefix="/flowserve")
        with httpx.Client(base_url=nginx.url, timeout=30) as http:
            run = http.post(f"/flowserve/api/v1/run/{HELLO}", json={})
            docs = http.get("/flowserve/docs")
            spec = http.get("/flowserve/openapi.json").json()
            asset = http.get("/flowserve/docs/static/swagger-ui-bundle.js")
            outside = http.get("/api/v1/version")
    finally:
        if nginx is not None:
            nginx.stop()
        replica.stop()
    assert run.status_code == 200
    assert run.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "Hello, World!"
    assert 'url: "/flowserve/openapi.json"' in docs.text
    assert asset.status_code == 200
    assert spec["servers"] == [{"url": f"http://127.0.0.1:{nginx.port}/flowserve"}]
    # Outside the prefix nothing reaches flowserve (it would have set a request id).
    assert outside.status_code != 200
    assert "x-request-id" not in outside.headers
