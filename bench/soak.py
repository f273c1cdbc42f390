"""``make soak``: mixed load for a long while, watching that nothing leaks.

Starts the production shape on loopback: ``flowserve serve`` on Postgres + Redis
(a private database and key prefix, auth on), a separate ``flowserve worker``
running the webhook jobs, and the fake OpenAI-compatible model. Then drives,
for SOAK_SECONDS (default 600), a weighted mix of Langflow calls from
``--concurrency`` clients: hello-world runs, session chats with tweaks, LLM runs,
streamed runs read to the end, webhooks (202, then the job must succeed), flow
edits (create, run, PATCH, PUT, delete; PATCH of a flow being served) and reads.

Every few seconds it samples both processes: RSS, open fds, TCP connections
(by peer), and from the other side the Postgres backends on our database
(pg_stat_activity) and our Redis clients (CLIENT LIST). The report at the end
has per-operation counts, statuses and latencies, and each resource's first,
last and max; it judges

- unexpected errors: any status an operation should not answer, any transport
  error, a stream without its ``end`` event, a webhook job that did not succeed;
- leaks: a resource whose mean over the last quarter of the run exceeds its mean
  over the second quarter (the first is warm-up) by more than its tolerance.

Exit status 1 when either is found, 2 when the servers cannot start.

    SOAK_SECONDS=600 .venv/bin/python bench/soak.py [--concurrency 8] [--json report.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    API_KEY,
    FLOWS,
    HELLO,
    HELLO_ID,
    LLM,
    PROMPT,
    PROMPT_ID,
    ExternalState,
    Server,
    descendants,
    flowserve,
    flowserve_worker,
    launch,
    machine,
    model_env,
    pct,
    rss_mb,
    start,
    start_model,
    stop,
    tail,
)

WEBHOOK_ID = "9b2f1d7e-5c4a-4e8b-8f31-6a0d2c9e7b55"
FLOW_FILES = ("hello-world.json", "prompt-echo.json", "basic-prompting.json", "webhook-echo.json")
LLM_ANSWER = "Hello! How can I help?"
SESSIONS = 64  # chat sessions the load cycles through (their histories stay bounded by TTL)
JOB_WAIT = 60.0  # seconds a webhook job may take before it counts as lost

# Relative weight of each kind of step in the mix; a step may issue several calls.
MIX = {"hello": 30, "chat": 20, "llm": 15, "stream": 10, "webhook": 8, "edit": 5, "read": 12}

# The operations each kind of step issues (a kind weighted 0 is not expected to appear).
KIND_OPS = {
    "hello": ("run hello-world",),
    "chat": ("run chat+session+tweaks",),
    "llm": ("run llm (fake model)",),
    "stream": ("run stream=true",),
    "webhook": ("webhook", "webhook job"),
    "edit": (
        "flow create",
        "flow run (new)",
        "flow patch",
        "flow put",
        "flow delete",
        "flow patch (served)",
    ),
    "read": ("list flows", "read flow", "monitor messages"),
}

# Every operation the report must show, and the statuses each is allowed to answer.
EXPECTED: dict[str, frozenset[int | str]] = {
    "run hello-world": frozenset({200}),
    "run chat+session+tweaks": frozenset({200}),
    "run llm (fake model)": frozenset({200}),
    "run stream=true": frozenset({200}),
    "webhook": frozenset({202}),
    "webhook job": frozenset({"succeeded"}),
    "flow create": frozenset({201}),
    "flow run (new)": frozenset({200}),
    "flow patch": frozenset({200}),
    "flow put": frozenset({200}),
    "flow delete": frozenset({200}),
    "flow patch (served)": frozenset({200}),
    "list flows": frozenset({200}),
    "read flow": frozenset({200}),
    "monitor messages": frozenset({200}),
}

# How much a resource may grow (last-quarter mean over second-quarter mean) before it
# counts as a leak. RSS: allocator and caches settle slowly on a busy machine; fds and
# connections: pooled, so a few either way is the pools breathing, not a leak.
TOLERANCE = {
    "rss_mb": 12.0,
    "fds": 10.0,
    "tcp": 10.0,
    "pg_backends": 5.0,
    "redis_clients": 5.0,
}


# --- the load ------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # ms
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: int = 0
    examples: list[str] = field(default_factory=list)
    when: list[float] = field(default_factory=list)  # seconds into the load, per unexpected


class Load:
    """The clients: each loops over weighted random steps until the deadline."""

    def __init__(
        self, url: str, seconds: float, concurrency: int, seed: int, mix: dict[str, int]
    ) -> None:
        self.url = url
        self.mix = {kind: weight for kind, weight in mix.items() if weight > 0}
        self.deadline = time.monotonic() + seconds
        self.concurrency = concurrency
        self.rng = random.Random(seed)
        self.began = time.monotonic()
        self.tallies: dict[str, Tally] = {op: Tally() for op in EXPECTED}
        self.steps = 0
        self._template = json.loads((FLOWS / "hello-world.json").read_text())

    def record(self, op: str, status: int | str, began: float, problem: str = "") -> bool:
        tally = self.tallies[op]
        tally.latencies.append((time.perf_counter() - began) * 1000)
        tally.statuses[str(status)] += 1
        ok = status in EXPECTED[op] and not problem
        if not ok:
            tally.unexpected += 1
            tally.when.append(time.monotonic() - self.began)
            if len(tally.examples) < 5:
                tally.examples.append(f"{status}: {problem}"[:300])
        return ok

    async def call(
        self, http: httpx.AsyncClient, op: str, method: str, path: str, body: Any = None
    ) -> httpx.Response | None:
        began = time.perf_counter()
        try:
            response = await http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            self.record(op, type(exc).__name__, began, str(exc))
            return None
        problem = "" if response.status_code < 400 else response.text
        self.record(op, response.status_code, began, problem)
        return response

    async def client(self, http: httpx.AsyncClient) -> None:
        kinds, weights = list(self.mix), list(self.mix.values())
        while time.monotonic() < self.deadline:
            kind = self.rng.choices(kinds, weights)[0]
            self.steps += 1
            await getattr(self, f"step_{kind}")(http)

    async def run(self) -> None:
        limits = httpx.Limits(
            max_connections=self.concurrency,
            max_keepalive_connections=self.concurrency,
            keepalive_expiry=30,
        )
        headers = {"x-api-key": API_KEY}
        timeout = httpx.Timeout(60.0)
        async with httpx.AsyncClient(
            base_url=self.url, headers=headers, limits=limits, timeout=timeout
        ) as http:
            await asyncio.gather(*(self.client(http) for _ in range(self.concurrency)))

    # One method per kind of step in MIX.

    async def step_hello(self, http: httpx.AsyncClient) -> None:
        await self.call(http, "run hello-world", "POST", HELLO.path, HELLO.body)

    async def step_chat(self, http: httpx.AsyncClient) -> None:
        body = {**PROMPT.body, "session_id": f"soak-{self.rng.randrange(SESSIONS)}"}
        body["input_value"] = f"question {self.rng.randrange(1_000_000)}"
        await self.call(http, "run chat+session+tweaks", "POST", PROMPT.path, body)

    async def step_llm(self, http: httpx.AsyncClient) -> None:
        began = time.perf_counter()
        try:
            response = await http.post(LLM.path, json=LLM.body)
        except httpx.HTTPError as exc:
            self.record("run llm (fake model)", type(exc).__name__, began, str(exc))
            return
        problem = "" if LLM_ANSWER in response.text else f"no model answer: {response.text}"
        self.record("run llm (fake model)", response.status_code, began, problem)

    async def step_stream(self, http: httpx.AsyncClient) -> None:
        op = "run stream=true"
        began = time.perf_counter()
        try:
            async with http.stream("POST", HELLO.path + "?stream=true", json=HELLO.body) as r:
                text = (await r.aread()).decode()
        except httpx.HTTPError as exc:
            self.record(op, type(exc).__name__, began, str(exc))
            return
        events = [json.loads(chunk) for chunk in text.split("\n\n") if chunk.strip()]
        last = events[-1]["event"] if events else "nothing"
        problem = "" if last == "end" else f"stream ended with {last!r}: {text[-300:]}"
        self.record(op, r.status_code, began, problem)

    async def step_webhook(self, http: httpx.AsyncClient) -> None:
        began = time.perf_counter()
        payload = {"soak": self.rng.randrange(1_000_000)}
        response = await self.call(
            http, "webhook", "POST", f"/api/v1/webhook/{WEBHOOK_ID}", payload
        )
        if response is None or response.status_code != 202:
            return
        job = response.json()["job_id"]
        status, last = "lost", ""
        while time.perf_counter() - began < JOB_WAIT:
            await asyncio.sleep(0.05)
            try:
                polled = await http.get(f"/api/v1/jobs/{job}")
            except httpx.HTTPError as exc:
                self.record("webhook job", type(exc).__name__, began, str(exc))
                return
            if polled.status_code != 200:
                self.record("webhook job", polled.status_code, began, polled.text)
                return
            status, last = polled.json()["status"], polled.text
            if status in ("succeeded", "failed", "cancelled"):
                break
        problem = "" if status == "succeeded" else f"job {job}: {last}"
        self.record("webhook job", status, began, problem)

    async def step_edit(self, http: httpx.AsyncClient) -> None:
        """A flow's whole life, plus a change to a flow other clients are running."""
        document = dict(self._template)
        flow_id = str(uuid.uuid4())
        document.update(id=flow_id, name=f"soak-{flow_id[:8]}", endpoint_name=None)
        if await self.call(http, "flow create", "POST", "/api/v1/flows/", document) is None:
            return
        run = {"input_value": "edited", "input_type": "text"}
        await self.call(http, "flow run (new)", "POST", f"/api/v1/run/{flow_id}", run)
        patch = {"description": f"patched {time.time()}"}
        await self.call(http, "flow patch", "PATCH", f"/api/v1/flows/{flow_id}", patch)
        document["name"] += "-put"
        await self.call(http, "flow put", "PUT", f"/api/v1/flows/{flow_id}", document)
        await self.call(http, "flow run (new)", "POST", f"/api/v1/run/{flow_id}", run)
        await self.call(http, "flow delete", "DELETE", f"/api/v1/flows/{flow_id}")
        served = {"description": f"soak {self.steps}"}
        await self.call(http, "flow patch (served)", "PATCH", f"/api/v1/flows/{PROMPT_ID}", served)

    async def step_read(self, http: httpx.AsyncClient) -> None:
        await self.call(http, "list flows", "GET", "/api/v1/flows/?header_flows=true")
        await self.call(http, "read flow", "GET", f"/api/v1/flows/{HELLO_ID}")
        session = f"soak-{self.rng.randrange(SESSIONS)}"
        path = f"/api/v1/monitor/messages?flow_id={PROMPT_ID}&session_id={session}"
        await self.call(http, "monitor messages", "GET", path)


# --- watching the processes -----------------------------------------------------------------


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    if len(host) == 8:  # IPv4, little-endian
        ip = ".".join(str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0))
    else:
        ip = "v6:" + host
    return ip, int(port, 16)


def connections(pid: int) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(local, remote) of every established TCP connection the process tree holds."""
    inodes: set[str] = set()
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{member}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cells = line.split()
                if cells[3] == "01" and cells[9] in inodes:  # 01: ESTABLISHED
                    found.append((_address(cells[1]), _address(cells[2])))
    return found


def open_fds(pid: int) -> int:
    total = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{member}/fd"))
    return total


class Watcher:
    """Samples the processes and the stores' view of them every ``interval`` seconds."""

    def __init__(self, processes: dict[str, Server], state: ExternalState, interval: float):
        self.processes = processes
        self.state = state
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self.began = time.monotonic()

    async def sample(self, pg: Any, redis: Any) -> None:
        row: dict[str, float] = {"t": time.monotonic() - self.began}
        redis_addresses: set[str] = set()
        for name, server in self.processes.items():
            assert server.proc is not None
            pid = server.proc.pid
            row[f"{name}.rss_mb"] = rss_mb(pid)
            row[f"{name}.fds"] = open_fds(pid)
            tcp = connections(pid)
            row[f"{name}.tcp"] = len(tcp)
            row[f"{name}.tcp_http_in"] = sum(1 for local, _ in tcp if local[1] == server.port)
            row[f"{name}.tcp_pg"] = sum(1 for _, remote in tcp if remote[1] == 5432)
            row[f"{name}.tcp_redis"] = sum(1 for _, remote in tcp if remote[1] == 6379)
            redis_addresses |= {f"{ip}:{port}" for (ip, port), remote in tcp if remote[1] == 6379}
        row["pg_backends"] = await pg.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.state.name,
        )
        clients = await redis.client_list()
        row["redis_clients"] = sum(1 for c in clients if c.get("addr") in redis_addresses)
        self.samples.append(row)

    async def watch(self, until: asyncio.Event) -> None:
        import asyncpg
        import redis.asyncio as aioredis

        pg = await asyncpg.connect(self.state.database_url)
        redis = aioredis.Redis.from_url(self.state.redis_url)
        try:
            while True:
                await self.sample(pg, redis)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), self.interval)
                if until.is_set():
                    await self.sample(pg, redis)
                    return
        finally:
            await pg.close()
            await redis.aclose()


# --- judging and the report -----------------------------------------------------------------


def slope_per_minute(times: list[float], values: list[float]) -> float:
    if len(values) < 2 or len(set(times)) < 2:
        return 0.0
    return statistics.linear_regression(times, values).slope * 60


def judge_series(name: str, times: list[float], values: list[float]) -> dict[str, Any]:
    kind = name.split(".")[-1]
    tolerance = TOLERANCE.get(kind)
    q = max(1, len(values) // 4)
    second = values[q : 2 * q] or values
    last = values[3 * q :] or values[-1:]
    growth = statistics.fmean(last) - statistics.fmean(second)
    return {
        "first": values[0],
        "last": values[-1],
        "max": max(values),
        "q2_mean": statistics.fmean(second),
        "q4_mean": statistics.fmean(last),
        "growth": growth,
        "slope_per_min": slope_per_minute(times[q:], values[q:]),
        "tolerance": tolerance,
        "leak": tolerance is not None and growth > tolerance,
    }


def build_report(
    load: Load, watcher: Watcher, seconds: float, args: argparse.Namespace
) -> dict[str, Any]:
    ops = {}
    for op, tally in load.tallies.items():
        lat = tally.latencies
        ops[op] = {
            "count": len(lat),
            "statuses": dict(tally.statuses),
            "unexpected": tally.unexpected,
            "examples": tally.examples,
            "unexpected_at_s": [round(min(tally.when)), round(max(tally.when))]
            if tally.when
            else [],
            "p50_ms": statistics.median(lat) if lat else None,
            "p99_ms": pct(lat, 99) if lat else None,
        }
    samples = watcher.samples
    times = [s["t"] for s in samples]
    resources = {
        name: judge_series(name, times, [s[name] for s in samples])
        for name in samples[0]
        if name != "t"
    }
    unexpected = sum(o["unexpected"] for o in ops.values())
    skipped = {
        op for kind, ops_of_kind in KIND_OPS.items() if kind not in load.mix for op in ops_of_kind
    }
    missing = [op for op, o in ops.items() if not o["count"] and op not in skipped]
    leaks = [name for name, r in resources.items() if r["leak"]]
    return {
        "seconds": seconds,
        "mix": load.mix,
        "concurrency": args.concurrency,
        "samples": len(samples),
        "requests": sum(o["count"] for o in ops.values()),
        "ops": ops,
        "resources": resources,
        "unexpected": unexpected,
        "missing_ops": missing,
        "leaks": leaks,
        "ok": not unexpected and not missing and not leaks,
    }


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        cells = (
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *map(line, rows)])


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _num(value: float) -> str:
    return f"{value:.1f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"


def render(report: dict[str, Any]) -> str:
    op_rows = [
        (
            op,
            str(o["count"]),
            " ".join(f"{s}x{n}" for s, n in sorted(o["statuses"].items())) or "-",
            str(o["unexpected"]),
            _ms(o["p50_ms"]),
            _ms(o["p99_ms"]),
        )
        for op, o in report["ops"].items()
    ]
    resource_rows = [
        (
            name,
            _num(r["first"]),
            _num(r["last"]),
            _num(r["max"]),
            f"{r['q2_mean']:.1f}",
            f"{r['q4_mean']:.1f}",
            f"{r['growth']:+.1f}",
            f"{r['slope_per_min']:+.2f}",
            "-"
            if r["tolerance"] is None
            else ("LEAK" if r["leak"] else f"ok (<= {r['tolerance']:g})"),
        )
        for name, r in report["resources"].items()
    ]
    out = [
        _table(("operation", "count", "statuses", "unexpected", "p50 ms", "p99 ms"), op_rows),
        "",
        _table(
            (
                "resource",
                "first",
                "last",
                "max",
                "Q2 mean",
                "Q4 mean",
                "Q4-Q2",
                "slope/min",
                "verdict",
            ),
            resource_rows,
        ),
        "",
    ]
    out.append(
        "first = as the load starts, last = after it stopped; Q2/Q4 = means over the second and "
        "last quarter of the samples (the first quarter is warm-up); verdict: Q4-Q2 within "
        "the tolerance"
    )
    for op, o in report["ops"].items():
        if o["unexpected"]:
            first, last = o["unexpected_at_s"]
            out.append(f"unexpected {op}: {o['unexpected']} between +{first} s and +{last} s")
        for example in o["examples"]:
            out.append(f"  {example}")
    verdict = "PASS" if report["ok"] else "FAIL"
    reasons = []
    if report["unexpected"]:
        reasons.append(f"{report['unexpected']} unexpected errors")
    if report["missing_ops"]:
        reasons.append(f"never exercised: {', '.join(report['missing_ops'])}")
    if report["leaks"]:
        reasons.append(f"growth beyond tolerance: {', '.join(report['leaks'])}")
    out.append(
        f"soak {verdict}: {report['requests']} calls in {report['seconds']:g} s, "
        f"{report['samples']} samples" + (f" ({'; '.join(reasons)})" if reasons else "")
    )
    return "\n".join(out)


# --- the run --------------------------------------------------------------------------------


async def drive(
    url: str, processes: dict[str, Server], state: ExternalState, args: argparse.Namespace
) -> dict[str, Any]:
    load = Load(url, args.seconds, args.concurrency, args.seed, args.mix)
    watcher = Watcher(processes, state, args.interval)
    done = asyncio.Event()
    watching = asyncio.create_task(watcher.watch(done))
    try:
        await load.run()
    finally:
        done.set()
        await watching
    return build_report(load, watcher, args.seconds, args)


def soak(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="flowserve-soak-"))
    flows = workdir / "flows"
    flows.mkdir()
    for name in FLOW_FILES:
        shutil.copy(FLOWS / name, flows / name)
    state = ExternalState()
    servers: list[Server] = []
    try:
        try:
            state.create()
        except Exception as exc:
            raise SystemExit(f"soak: cannot create the Postgres database: {exc}") from exc
        model = start_model(workdir)
        servers.append(model)
        if model.failure:
            raise SystemExit(f"soak: fake model: {model.failure}")
        env = {**state.env(), **model_env(model.port), "FLOWSERVE_JOB_WORKER": "false"}
        server = flowserve("flowserve pg+redis", 1, flows, env)
        servers.append(server)
        if not start(server, HELLO, workdir):
            raise SystemExit(f"soak: flowserve: {server.failure}")
        worker = flowserve_worker(flows, {**state.env(), **model_env(model.port)})
        servers.append(worker)
        launch(worker, workdir)
        print(
            f"soak: {args.seconds:g} s, {args.concurrency} clients, sampling every "
            f"{args.interval:g} s; server :{server.port}, logs in {workdir}",
            file=sys.stderr,
            flush=True,
        )
        report = asyncio.run(drive(server.url, {"server": server, "worker": worker}, state, args))
        for process in (server, worker):
            assert process.proc is not None
            if process.proc.poll() is not None:
                report["ok"] = False
                report.setdefault("crashed", []).append(process.label)
                assert process.log is not None
                print(f"soak: {process.label} exited: {tail(process.log)}", file=sys.stderr)
        return report
    finally:
        for server in reversed(servers):
            stop(server)
        state.drop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    parser.add_argument(
        "--seconds", type=float, default=seconds, help="load duration (SOAK_SECONDS)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=int(os.environ.get("SOAK_CONCURRENCY", "8"))
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="seconds between samples (default: seconds/60, 1..10)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mix",
        default="",
        help="override weights, e.g. edit=0,llm=30 (default: "
        + ",".join(f"{k}={v}" for k, v in MIX.items())
        + ")",
    )
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs")
    args = parser.parse_args()
    mix = dict(MIX)
    for item in filter(None, args.mix.split(",")):
        kind, _, weight = item.partition("=")
        if kind not in MIX or not weight.isdigit():
            parser.error(f"--mix: {item!r} is not KIND=WEIGHT with KIND one of {', '.join(MIX)}")
        mix[kind] = int(weight)
    args.mix = mix
    if not args.interval:
        args.interval = min(10.0, max(1.0, args.seconds / 60))
    began = time.time()
    report = soak(args)
    report["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began))
    report["machine"] = machine()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print()
    print(f"# flowserve soak, {report['started']}")
    print(f"# {report['machine']}")
    print(
        f"# {args.seconds:g} s, {args.concurrency} clients; flowserve serve x1 + flowserve worker "
        "on Postgres + Redis, auth on; fake model 50 ms"
    )
    print("# mix: " + ", ".join(f"{kind} {weight}" for kind, weight in report["mix"].items()))
    print()
    print(render(report))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
