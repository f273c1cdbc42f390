"""The files in deploy/ are valid and say what the docs promise.

Compose is checked by ``docker compose config`` (or ``docker-compose``) where
a client is installed, and structurally always; Kubernetes manifests against
the real API schemas (kubernetes-validate, offline); nginx with ``nginx -t``;
the systemd unit with ``systemd-analyze verify`` where available. Every
``FLOWSERVE_*`` variable the files set must be a real setting of the right type.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from flowserve.settings import Settings
from tests.deploy.processes import ROOT, nginx_binary, nginx_config

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in MANIFESTS:
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def by_kind(kind: str, name: str | None = None) -> dict[str, Any]:
    for doc in k8s_documents():
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name):
            return doc
    raise AssertionError(f"no {kind} {name or ''} in deploy/k8s")


def interpolate(text: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the default."""
    return re.sub(r"\$\{[A-Z_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolate((DEPLOY / "compose.yaml").read_text()))
    return loaded


def flowserve_settings(env: dict[str, Any]) -> Settings:
    return Settings.from_mapping({k: str(v) for k, v in env.items() if k.startswith("FLOWSERVE_")})


def test_compose_file_is_valid_for_the_compose_client() -> None:
    client = (
        ["docker", "compose"]
        if shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
        else ["docker-compose"]
        if shutil.which("docker-compose")
        else None
    )
    if client is not None:
        result = subprocess.run(
            [*client, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "FLOWSERVE_API_KEY": "k"},
        )
        assert result.returncode == 0, result.stderr
    # Always: the structure the docs describe.
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "flowserve-1", "flowserve-2", "worker", "nginx"} <= set(
        services
    )
    assert services["migrate"]["command"] == ["migrate"]
    assert services["worker"]["command"] == ["worker"]
    for name in ("flowserve-1", "flowserve-2"):
        replica = services[name]
        assert replica["command"] == ["serve"]
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        settings = flowserve_settings(replica["environment"])
        assert not settings.migrate_on_start
        # Only nginx's fixed address may set forwarded headers.
        nginx_ip = services["nginx"]["networks"]["backend"]["ipv4_address"]
        assert settings.forwarded_allow_ips == nginx_ip
        # Docker waits longer than flowserve drains.
        assert int(replica["stop_grace_period"].rstrip("s")) > settings.shutdown_timeout
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifest_matches_the_api_schema(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_schema_check_catches_mistakes() -> None:
    service = by_kind("Service")
    broken = {**service, "spec": {**service["spec"], "portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_deployment_probes_limits_and_drain() -> None:
    deployment = by_kind("Deployment", "flowserve")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health_check"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    settings = flowserve_settings(by_kind("ConfigMap")["data"])
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_timeout + 5  # + preStop
    assert by_kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "flowserve"
    assert by_kind("Job")["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_configmap_and_secret_set_only_real_settings() -> None:
    env = {**by_kind("ConfigMap")["data"], **by_kind("Secret")["stringData"]}
    settings = flowserve_settings(env)
    assert settings.database_url.startswith("postgresql://")
    assert settings.public_url.startswith("https://")


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in MANIFESTS}


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) >= 2
    final = stages[-1]
    assert re.search(r"^USER (?!0|root)\S+", final, re.MULTILINE)
    assert "HEALTHCHECK" in final
    assert "/health" in final
    # Compilers stay in the build stage.
    assert "build-essential" in stages[0]
    assert not re.search(r"build-essential|gcc|apt-get install", final)
    assert "COPY --from=build" in final


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(tmp_path, 18080, [18081, 18082]))
    result = subprocess.run(
        [nginx_binary(), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "e.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = (DEPLOY / "nginx.conf").read_text()
    for directive in (
        "proxy_buffering off;",
        "proxy_read_timeout 3600s;",
        "proxy_next_upstream error timeout http_502 http_503;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_http_version 1.1;",
    ):
        assert directive in text


def test_systemd_unit_drains_and_restarts(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "flowserve.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("flowserve serve")
    assert service["ExecStartPre"].endswith("flowserve migrate")
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > Settings().shutdown_timeout
    assert service["Restart"] == "on-failure"
    assert service["User"] == "flowserve"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    # Point the unit at this checkout's flowserve so verify checks everything else.
    local = (
        (DEPLOY / "flowserve.service")
        .read_text()
        .replace("/opt/flowserve/bin/flowserve", str(Path(sys.executable).parent / "flowserve"))
    )
    copy = tmp_path / "flowserve.service"
    copy.write_text(local)
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False
    )
    problems = [line for line in result.stderr.splitlines() if "flowserve.service" in line]
    assert not problems, result.stderr


def test_servicemonitor_scrapes_with_the_metrics_token() -> None:
    monitor = yaml.safe_load((K8S / "monitoring" / "servicemonitor.yaml").read_text())
    assert monitor["kind"] == "ServiceMonitor"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    service_ports = {p["name"] for p in by_kind("Service")["spec"]["ports"]}
    assert endpoint["port"] in service_ports
    credentials = endpoint["authorization"]["credentials"]
    secret = by_kind("Secret", credentials["name"])
    token = secret["stringData"][credentials["key"]]
    assert flowserve_settings({credentials["key"]: token}).metrics_token == token
    # Annotation-based scraping cannot send the token: the pods must not invite it.
    pod = by_kind("Deployment", "flowserve")["spec"]["template"]["metadata"]
    assert "prometheus.io/scrape" not in pod.get("annotations", {})
