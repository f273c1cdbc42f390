"""What ``make bench`` and ``make soak`` share: the servers they start and how they watch them.

Every server is a real process on loopback (flowserve via its CLI, the fake
OpenAI-compatible model from bench/fake_openai.py); ``ExternalState`` gives a
run its own Postgres database and Redis key prefix and removes them after.
The workloads are the requests both tools send (Langflow's run bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "tests" / "fixtures" / "flows"
PYTHON = sys.executable
FLOWSERVE = str(Path(sys.executable).parent / "flowserve")
API_KEY = "bench-" + uuid.uuid4().hex
LLM_LATENCY = 0.05

HELLO_ID = "44d4caa3-488a-4d5d-9a1d-20af07107439"
PROMPT_ID = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
LLM_ID = "c1cb7b3c-2589-4754-ac61-8cf88df4a07e"


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    body: dict[str, Any]


HELLO = Workload(
    "hello-world",
    f"/api/v1/run/{HELLO_ID}",
    {"input_value": "hi there", "input_type": "text", "output_type": "chat"},
)
PROMPT = Workload(
    "prompt-echo+session+tweaks",
    f"/api/v1/run/{PROMPT_ID}",
    {
        "input_value": "What is flowserve?",
        "session_id": "bench-session",
        "tweaks": {
            "Prompt-t2oaK": {"template": "You are terse. Question: {question}"},
            "ChatOutput-yK0AU": {"sender_name": "Bench"},
        },
    },
)
HELLO_NOSTORE = Workload(
    "hello-world (not stored)",
    HELLO.path,
    {**HELLO.body, "tweaks": {"ChatOutput-boh63": {"should_store_message": False}}},
)
STREAM = Workload("hello-world stream", f"/api/v1/run/{HELLO_ID}?stream=true", HELLO.body)
LLM_TWEAKS = {"LanguageModelComponent-FLeYF": {"provider": "OpenAI", "model_name": "gpt-4o-mini"}}
LLM = Workload(
    "basic-prompting (LLM 50 ms)",
    f"/api/v1/run/{LLM_ID}",
    {"input_value": "Hello", "tweaks": LLM_TWEAKS},
)
LLM_STREAM = Workload(
    "basic-prompting stream",
    f"/api/v1/run/{LLM_ID}?stream=true",
    {
        "input_value": "Hello",
        "tweaks": {
            "LanguageModelComponent-FLeYF": {
                **LLM_TWEAKS["LanguageModelComponent-FLeYF"],
                "stream": True,
            }
        },
    },
)
CONC = Workload(
    "basic-prompting (LLM 1 s)",
    f"/api/v1/run/{LLM_ID}",
    {"input_value": "Hello", "tweaks": LLM_TWEAKS},
)
CONC_STREAM = Workload("basic-prompting stream (LLM 1 s)", LLM_STREAM.path, LLM_STREAM.body)
# The same runs with Chat Input/Output not storing their messages: the embedded
# store keeps every session message for its 30-minute TTL, which a window of
# thousands of runs a second adds to the process's RSS besides the runs in flight.
_NOSTORE = {
    "ChatInput-b6UCc": {"should_store_message": False},
    "ChatOutput-yK0AU": {"should_store_message": False},
}
CONC_NOSTORE = Workload(
    "basic-prompting (LLM 1 s, not stored)",
    CONC.path,
    {**CONC.body, "tweaks": {**LLM_TWEAKS, **_NOSTORE}},
)
CONC_STREAM_NOSTORE = Workload(
    "basic-prompting stream (LLM 1 s, not stored)",
    CONC_STREAM.path,
    {**CONC_STREAM.body, "tweaks": {**CONC_STREAM.body["tweaks"], **_NOSTORE}},
)
MODEL = Workload(
    "model direct (50 ms)",
    "/v1/chat/completions",
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]},
)


@dataclass
class Server:
    label: str
    argv: list[str]
    env: dict[str, str]
    workers: int = 1
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    cold: float | None = None
    log: Path | None = None
    failure: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def launch(server: Server, workdir: Path) -> subprocess.Popen[bytes]:
    """Start the server's process (its output to a log in ``workdir``) on a fresh port."""
    server.port = server.port or free_port()
    server.log = workdir / f"{server.label.replace(' ', '_').replace('/', '_')}.log"
    argv = [a.replace("{port}", str(server.port)) for a in server.argv]
    with server.log.open("wb") as log:
        server.proc = subprocess.Popen(
            argv, cwd=ROOT, env=server.env, stdout=log, stderr=subprocess.STDOUT
        )
    return server.proc


def start(server: Server, workload: Workload, workdir: Path) -> bool:
    """Start the process and time it until the workload answers 200 (the cold start)."""
    server.port = 0
    body = json.dumps(workload.body).encode()
    began = time.perf_counter()
    proc = launch(server, workdir)
    assert server.log is not None
    deadline = began + 60
    last = ""
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            server.failure = f"exited with {proc.returncode}: {tail(server.log)}"
            return False
        try:
            status, answer = post(server.port, workload.path, body, {"x-api-key": API_KEY})
        except OSError:
            time.sleep(0.005)
            continue
        if status == 200:
            server.cold = time.perf_counter() - began
            return True
        last = f"HTTP {status}: {answer[:300].decode(errors='replace')}"
        time.sleep(0.05)
    server.failure = f"no 200 within 60 s ({last})"
    stop(server)
    return False


def stop(server: Server) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def tail(path: Path, n: int = 400) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-n:].strip().replace("\n", " | ")
    return ""


def descendants(pid: int) -> list[int]:
    """The process and all its descendants (uvicorn workers, multiprocessing helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found = []
    stack = [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of the process and all its descendants (uvicorn workers), in MB."""
    total = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


# --- Postgres + Redis mode ---------------------------------------------------------------


class ExternalState:
    """A private database and Redis prefix for the run, created and dropped by the harness."""

    def __init__(self) -> None:
        self.name = "flowserve_bench_" + uuid.uuid4().hex[:10]
        self.database_url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"
        self.redis_url = "redis://127.0.0.1:6379/0"
        self.prefix = self.name + ":"

    def env(self) -> dict[str, str]:
        return {
            "FLOWSERVE_DATABASE_URL": self.database_url,
            "FLOWSERVE_REDIS_URL": self.redis_url,
            "FLOWSERVE_REDIS_PREFIX": self.prefix,
        }

    def create(self) -> None:
        asyncio.run(self._sql(f'CREATE DATABASE "{self.name}"', "postgres"))

    def used(self) -> bool:
        """Did flowserve really store anything there (not silently embedded)?"""
        query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        tables = asyncio.run(self._sql(query, self.name))
        return bool(tables)

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run(
                self._sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', "postgres")
            )
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(self.redis_url)
            keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.close()

    @staticmethod
    async def _sql(query: str, database: str) -> Any:
        import asyncpg

        conn = await asyncpg.connect(
            host="127.0.0.1", port=5432, user="postgres", database=database
        )
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()


# --- the run -----------------------------------------------------------------------------


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVE_")}
    env.update(extra or {})
    return env


def flowserve(label: str, workers: int, flows: Path, env: dict[str, str]) -> Server:
    argv = [FLOWSERVE, "serve", "--port", "{port}", "--workers", str(workers)]
    argv += ["--flows-dir", str(flows)]
    settings = {"FLOWSERVE_API_KEY": API_KEY, "FLOWSERVE_AUTH": "on", **env}
    return Server(f"{label} x{workers}", argv, base_env(settings), workers)


def flowserve_worker(flows: Path, env: dict[str, str]) -> Server:
    """``flowserve worker``: runs the webhook jobs queued in Redis by the serving instances."""
    argv = [FLOWSERVE, "worker", "--flows-dir", str(flows)]
    settings = {"FLOWSERVE_API_KEY": API_KEY, "FLOWSERVE_AUTH": "on", **env}
    return Server("flowserve worker", argv, base_env(settings))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GB RAM"
    return (
        f"{os.cpu_count()} CPU ({cpu}), {mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def start_model(workdir: Path, latency: float = LLM_LATENCY, port: int = 0) -> Server:
    """The fake OpenAI-compatible model, started and answering (or ``failure`` set)."""
    argv = [PYTHON, "bench/fake_openai.py", "--port", "{port}", "--latency", str(latency)]
    model = Server("model", argv, base_env(), port=port)
    proc = launch(model, workdir)
    body = json.dumps(MODEL.body).encode()
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            model.failure = f"exited with {proc.returncode}: {tail(workdir / 'model.log')}"
            return model
        try:
            if post(model.port, MODEL.path, body, {})[0] == 200:
                return model
        except OSError:
            time.sleep(0.01)
    model.failure = "the fake model did not answer within 30 s"
    return model


def model_env(port: int) -> dict[str, str]:
    """What points flowserve's OpenAI provider at the fake model."""
    return {"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "sk-bench"}
