"""Real processes on loopback for deployment tests: ``flowserve serve`` replicas and nginx.

Ports are picked by binding port 0 and releasing it just before the process
binds it (a subprocess cannot inherit our socket through the CLI).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: object, what: str, *, seconds: float = 30.0) -> None:
    """Poll ``check()`` until it is truthy; fail the test naming ``what`` after ``seconds``."""
    assert callable(check)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached within {seconds:g} s")


class Replica:
    """``flowserve serve`` on 127.0.0.1 in a subprocess, with its logs in files."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        *,
        env: Mapping[str, str],
        args: tuple[str, ...] = (),
        module: str = "tests.deploy.serve",
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = workdir / f"{name}.stderr.log"
        full_env = {
            key: value for key, value in os.environ.items() if not key.startswith("FLOWSERVE_")
        }
        full_env.update(
            {
                "FLOWSERVE_HOST": "127.0.0.1",
                "FLOWSERVE_PORT": str(self.port),
                "FLOWSERVE_AUTH": "off",
                "FLOWSERVE_LOG_LEVEL": "info",
                "PYTHONPATH": str(ROOT),
                **env,
            }
        )
        self._stderr = self.stderr_path.open("wb")
        command = [sys.executable, "-m", module, *args]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

    def wait_ready(self) -> Replica:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.logs()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, f"{self.name} answering /health")
        return self

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, seconds: float = 30.0) -> int:
        return self.process.wait(timeout=seconds)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stderr.close()

    def logs(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    assert found, "nginx is required (Debian: apt-get install nginx-light; make services does it)"
    return found


def nginx_config(workdir: Path, listen: int, upstreams: list[int], prefix: str = "") -> str:
    """deploy/nginx.conf with loopback ports and private paths; everything else verbatim.

    With ``prefix``, the API is served under it the way the file's comment says.
    """
    text = NGINX_CONF.read_text()
    if prefix:
        text, count = re.subn(
            r"location / \{\n(\s*)proxy_pass http://flowserve;",
            rf"location {prefix}/ {{\n\1proxy_pass http://flowserve/;",
            text,
        )
        assert count == 1, "deploy/nginx.conf changed: no 'location /' to put under a prefix"
    replacements = [
        (r"pid /tmp/nginx\.pid;", f"pid {workdir}/nginx.pid;"),
        (r"error_log /dev/stderr warn;", f"error_log {workdir}/error.log info;"),
        (
            r"access_log /dev/stdout flowserve_json;",
            f"access_log {workdir}/access.log flowserve_json;\n"
            + "".join(
                f"    {kind}_temp_path {workdir}/{kind}_temp;\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            ),
        ),
        (r"listen 80;", f"listen 127.0.0.1:{listen};"),
    ]
    for index, port in enumerate(upstreams, start=1):
        replacements.append((rf"server flowserve-{index}:7860", f"server 127.0.0.1:{port}"))
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"deploy/nginx.conf changed: {pattern!r} matched {count} times"
    return text


class Nginx:
    """nginx in the foreground (never the system service), with deploy/nginx.conf."""

    def __init__(self, workdir: Path, upstreams: list[int], *, prefix: str = "") -> None:
        self.dir = workdir / "nginx"
        self.dir.mkdir()
        # Worker processes may run as an unprivileged user: let them write temp files.
        self.dir.chmod(0o777)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(nginx_config(self.dir, self.port, upstreams, prefix))
        binary = nginx_binary()
        base = [
            binary,
            "-p",
            str(self.dir),
            "-e",
            str(self.dir / "startup.log"),
            "-c",
            str(self.conf),
        ]
        check = subprocess.run([*base, "-t"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            [*base, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def up() -> bool:
            assert self.process.poll() is None, self.error_log()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(up, "nginx listening")

    def access_log(self) -> list[str]:
        path = self.dir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
