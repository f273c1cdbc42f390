"""``flowserve serve`` as deployed: trusted proxy headers, root path, public URL, workers."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.components import through, write_flow
from tests.deploy.processes import Replica
from tests.helpers import node

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
FLOWS = Path(__file__).resolve().parents[1] / "fixtures" / "flows"
Serve = Callable[..., Replica]
PROXIED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "Host": "flows.test"}


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    directory = tmp_path / "flows"
    directory.mkdir()
    (directory / "hello-world.json").write_bytes((FLOWS / "hello-world.json").read_bytes())
    return directory


@pytest.fixture
def serve(tmp_path: Path, flows: Path) -> Iterator[Serve]:
    started: list[Replica] = []

    def start(*args: str, **env: str) -> Replica:
        settings = {
            "FLOWSERVE_FLOWS_DIR": str(flows),
            **{f"FLOWSERVE_{k.upper()}": v for k, v in env.items()},
        }
        replica = Replica(
            tmp_path, f"serve-{len(started)}", env=settings, args=args, module="flowserve.cli"
        )
        started.append(replica)
        return replica.wait_ready()

    yield start
    for replica in started:
        replica.stop()


def access_lines(replica: Replica) -> list[dict[str, object]]:
    lines = []
    for line in replica.logs().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "request":
                lines.append(record)
    return lines


def test_forwarded_headers_from_a_trusted_proxy_are_honoured(serve: Serve) -> None:
    replica = serve("serve", forwarded_allow_ips="127.0.0.1")
    spec = httpx.get(f"{replica.url}/openapi.json", headers=PROXIED).json()
    assert spec["servers"] == [{"url": "https://flows.test"}]
    replica.terminate()
    replica.wait_exit()
    logged = [r for r in access_lines(replica) if r["path"] == "/openapi.json"]
    assert logged[-1]["client"] == "203.0.113.9"
    assert logged[-1]["scheme"] == "https"


def test_forwarded_headers_from_anyone_else_are_ignored(serve: Serve) -> None:
    replica = serve("serve", forwarded_allow_ips="192.0.2.1")
    spec = httpx.get(f"{replica.url}/openapi.json", headers=PROXIED).json()
    assert spec["servers"] == [{"url": "http://flows.test"}]
    replica.terminate()
    replica.wait_exit()
    logged = [r for r in access_lines(replica) if r["path"] == "/openapi.json"]
    assert logged[-1]["client"] == "127.0.0.1"
    assert logged[-1]["scheme"] == "http"


def test_root_path_prefixes_generated_links(serve: Serve) -> None:
    replica = serve("serve", root_path="/flowserve")
    # The proxy strips the prefix before forwarding (location /flowserve/ -> /).
    run = httpx.post(f"{replica.url}/api/v1/run/{HELLO}", json={})
    docs = httpx.get(f"{replica.url}/docs")
    spec = httpx.get(f"{replica.url}/openapi.json", headers={"Host": "example.org"}).json()
    assert run.status_code == 200
    assert 'url: "/flowserve/openapi.json"' in docs.text
    assert "/flowserve/docs/static/swagger-ui-bundle.js" in docs.text
    assert spec["servers"] == [{"url": "http://example.org/flowserve"}]


def test_public_url_wins_for_generated_links(serve: Serve) -> None:
    replica = serve("serve", public_url="https://flows.example.com/api-root/")
    spec = httpx.get(f"{replica.url}/openapi.json", headers=PROXIED).json()
    assert spec["servers"] == [{"url": "https://flows.example.com/api-root"}]


def test_several_workers_serve_and_drain(serve: Serve) -> None:
    replica = serve("serve", "--workers", "2")
    for _ in range(4):
        response = httpx.post(f"{replica.url}/api/v1/run/{HELLO}", json={})
        assert response.status_code == 200
    # Whichever worker answers, /metrics counts the runs of all of them.
    for _ in range(4):
        scraped = httpx.get(f"{replica.url}/metrics").text
        assert f'flowserve_runs_total{{flow="{HELLO}",status="success"}} 4.0' in scraped
        assert "flowserve_runs_in_flight 0.0" in scraped
    replica.terminate()
    assert replica.wait_exit() in (0, -signal.SIGTERM)
    assert replica.logs().count("Application startup complete") == 2
    # Embedded stores are per process: the operator is told so at startup.
    assert "workers_without_redis" in replica.logs()


def test_shutdown_deadline_ends_runs_that_outlast_it(tmp_path: Path, flows: Path) -> None:
    gate = tmp_path / "never-opened"
    write_flow(flows, through("held", node("TestFileGate-b", "TestFileGate", path=str(gate))))
    replica = Replica(
        tmp_path,
        "deadline",
        env={"FLOWSERVE_FLOWS_DIR": str(flows), "FLOWSERVE_SHUTDOWN_TIMEOUT": "0.5"},
    )
    try:
        replica.wait_ready()
        with (
            httpx.Client(timeout=30) as http,
            http.stream("POST", f"{replica.url}/api/v1/run/held?stream=true", json={}) as resp,
        ):
            lines = resp.iter_lines()
            assert json.loads(next(lines))["event"] == "add_message"
            replica.terminate()
            # The run never finishes: at the deadline the server ends it and exits.
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in lines:
                    pass
        assert replica.wait_exit() in (0, -signal.SIGTERM)
    finally:
        replica.stop()
    assert "timeout graceful shutdown exceeded" in replica.logs()
