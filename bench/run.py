"""``make bench``: flowserve against a bare Starlette endpoint, side by side, in one run.

Every server is a real uvicorn process on loopback; wrk drives each with the
same POST (a generated Lua script) at concurrency 1, 16 and 64, and one table
is printed: req/s, p50, p99, errors, RSS after the row, cold start (process
start -> first 200 on the run endpoint) and flowserve / bare req/s.

    .venv/bin/python bench/run.py [--duration 5] [--soak 100000] [--only hello,llm]

Modes: embedded (always), Postgres+Redis (when FLOWSERVE_DATABASE_URL and
FLOWSERVE_REDIS_URL work in this build: the harness creates and drops its own
database and Redis key prefix). Workloads: hello-world, prompt-echo with a
session and tweaks, streaming (time to first event), 2 workers vs 1, the LLM
flow against bench/fake_openai.py (50 ms per answer) reporting the latency
flowserve adds, and a soak (RSS after N runs). The same load is applied to
each server in turn, so ratios stay meaningful on a busy machine even when
absolute numbers do not.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    API_KEY,
    CONC,
    CONC_NOSTORE,
    CONC_STREAM,
    CONC_STREAM_NOSTORE,
    FLOWS,
    HELLO,
    HELLO_NOSTORE,
    LLM,
    LLM_LATENCY,
    LLM_STREAM,
    MODEL,
    PROMPT,
    PYTHON,
    ROOT,
    STREAM,
    ExternalState,
    Server,
    Workload,
    base_env,
    flowserve,
    free_port,
    launch,
    machine,
    model_env,
    pct,
    post,
    rss_mb,
    start,
    start_model,
    stop,
)

CONCURRENCY = (1, 16, 64)


@dataclass
class Row:
    workload: str
    server: str
    c: int
    rps: float = 0.0
    p50: float = 0.0  # ms
    p99: float = 0.0  # ms
    errors: int = 0
    rss: float = 0.0  # MB
    cold: float | None = None  # s
    ratio: str = ""
    note: str = ""


LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "{key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests":%d,"duration_us":%d,"p50":%d,"p99":%d,"errors":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk(port: int, workload: Workload, c: int, seconds: float, workdir: Path) -> dict[str, Any]:
    script = workdir / "load.lua"
    script.write_text(LUA.format(body=json.dumps(workload.body), key=API_KEY))
    argv = [
        "wrk",
        "-t1",
        f"-c{c}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{workload.path}",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    result: dict[str, Any] = json.loads(line[6:])
    return result


def measure(server: Server, workload: Workload, c: int, seconds: float, workdir: Path) -> Row:
    assert server.proc is not None
    r = wrk(server.port, workload, c, seconds, workdir)
    return Row(
        workload=workload.name,
        server=server.label,
        c=c,
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50=r["p50"] / 1000,
        p99=r["p99"] / 1000,
        errors=r["errors"],
        rss=rss_mb(server.proc.pid),
        cold=server.cold,
    )


def first_event_ms(
    port: int, workload: Workload, marker: bytes, runs: int, stamped: bool = False
) -> list[float]:
    """Time from sending a streaming run to receiving the first event containing ``marker``;
    ``stamped``: from the ``@<ns>`` wall-clock stamp in that event (the fake model's send
    time of its first chunk) instead."""
    body = json.dumps(workload.body).encode()
    request = (
        f"POST {workload.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"x-api-key: {API_KEY}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    times: list[float] = []
    for _ in range(runs):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            began = time.perf_counter()
            sock.sendall(request)
            seen = b""
            while marker not in seen:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError(f"stream ended before {marker!r}: {seen[:300]!r}")
                seen += chunk
            arrived, now_ns = time.perf_counter(), time.time_ns()
            if stamped:
                stamp = re.search(rb'"@(\d+)"', seen[seen.index(marker) :])
                if stamp is None:
                    raise RuntimeError(f"no @<ns> stamp in the first token: {seen[-300:]!r}")
                times.append((now_ns - int(stamp.group(1))) / 1e6)
            else:
                times.append((arrived - began) * 1000)
            while sock.recv(65536):
                pass
    return times


def bare(workers: int) -> Server:
    argv = [PYTHON, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1"]
    argv += ["--port", "{port}", "--workers", str(workers), "--log-level", "warning"]
    argv += ["--no-access-log"]
    return Server(f"bare x{workers}", argv, base_env(), workers)


@dataclass
class Bench:
    seconds: float
    workdir: Path
    only: set[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)

    def want(self, name: str) -> bool:
        return not self.only or name in self.only

    def up(self, server: Server, workload: Workload = HELLO) -> bool:
        self.servers.append(server)
        ok = start(server, workload, self.workdir)
        if ok:
            # Warm up: imports, compile caches, first allocations; not measured.
            wrk(server.port, workload, 16, 1, self.workdir)
        return ok

    def down(self, *servers: Server) -> None:
        for server in servers:
            stop(server)

    def pair(self, base: Server, other: Server, workload: Workload, c: int) -> None:
        """Measure both on the same workload back to back; ratio = other / base req/s."""
        first = measure(base, workload, c, self.seconds, self.workdir)
        second = measure(other, workload, c, self.seconds, self.workdir)
        second.ratio = f"{second.rps / first.rps:.0%}" if first.rps else "-"
        self.rows += [first, second]
        self.echo(first)
        self.echo(second)

    def echo(self, row: Row) -> None:
        print(
            f"  {row.workload:32} {row.server:22} c={row.c:<3} {row.rps:9.0f} req/s "
            f"p50 {row.p50:7.2f} ms  p99 {row.p99:7.2f} ms  err {row.errors} "
            f"{row.ratio} {row.note}",
            file=sys.stderr,
            flush=True,
        )

    def skip(self, workload: str, server: str, why: str) -> None:
        row = Row(workload, server, 0, note=why)
        self.rows.append(row)
        print(f"  {workload}: {server}: {why}", file=sys.stderr, flush=True)

    def stream_ttfe(self, server: Server, workload: Workload, marker: bytes, runs: int) -> str:
        times = first_event_ms(server.port, workload, marker, runs)
        return f"first event p50 {statistics.median(times):.2f} ms p99 {pct(times, 99):.2f} ms"


def run(args: argparse.Namespace) -> Bench:
    workdir = Path(tempfile.mkdtemp(prefix="flowserve-bench-"))
    flows = workdir / "flows"
    flows.mkdir()
    for name in ("hello-world.json", "prompt-echo.json", "basic-prompting.json"):
        shutil.copy(FLOWS / name, flows / name)
    only = set(filter(None, args.only.split(","))) if args.only else set()
    bench = Bench(args.duration, workdir, only)

    model_port = free_port()
    llm_env = model_env(model_port)
    try:
        base = bare(1)
        embedded = flowserve("flowserve embedded", 1, flows, llm_env)
        if not bench.up(base) or not bench.up(embedded):
            raise SystemExit(f"cannot start: {base.failure or embedded.failure}")
        print(
            f"cold start: bare {base.cold:.3f} s, flowserve {embedded.cold:.3f} s", file=sys.stderr
        )

        side_by_side(bench, base, embedded, args.ttfe_runs)

        if bench.want("llm"):
            llm(bench, model_port, embedded, args)

        bench.down(embedded)
        if bench.want("conc"):
            concurrency(bench, flows, args)
        if bench.want("soak") and args.soak:
            # A fresh process: earlier rows' sessions would count. Embedded mode keeps
            # session messages in the process for their TTL (that is its store), so the
            # leak check runs with message storage off.
            fresh = flowserve("flowserve embedded", 1, flows, llm_env)
            if bench.up(fresh, HELLO_NOSTORE):
                soak(bench, fresh, args.soak, HELLO_NOSTORE)
            bench.down(fresh)

        if bench.want("pg"):
            postgres_mode(bench, base, flows, args)
        bench.down(base)

        if bench.want("workers"):
            two_workers(bench, flows, llm_env)
    finally:
        for server in bench.servers:
            stop(server)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"server logs kept in {workdir}", file=sys.stderr)
    return bench


def side_by_side(bench: Bench, base: Server, embedded: Server, ttfe_runs: int) -> None:
    workdir = bench.workdir
    for workload, name in ((HELLO, "hello"), (PROMPT, "prompt")):
        if not bench.want(name):
            continue
        if workload is not HELLO:
            wrk(embedded.port, workload, 16, 1, workdir)
        for c in CONCURRENCY:
            bench.pair(base, embedded, workload, c)

    if bench.want("stream"):
        for server in (base, embedded):
            wrk(server.port, STREAM, 16, 1, workdir)
        bench.pair(base, embedded, STREAM, 16)
        for row, server in zip(bench.rows[-2:], (base, embedded), strict=True):
            row.note = bench.stream_ttfe(server, STREAM, b"add_message", ttfe_runs)
            print(f"    {server.label}: {row.note}", file=sys.stderr)


def two_workers(bench: Bench, flows: Path, llm_env: dict[str, str]) -> None:
    base2 = bare(2)
    fs2 = flowserve("flowserve embedded", 2, flows, llm_env)
    if bench.up(base2) and bench.up(fs2):
        for c in (16, 64):
            bench.pair(base2, fs2, HELLO, c)
    else:
        bench.skip(HELLO.name, "x2", f"not available: {base2.failure or fs2.failure}")
    bench.down(base2, fs2)


def llm(bench: Bench, port: int, fs: Server, args: argparse.Namespace) -> None:
    model = start_model(bench.workdir, LLM_LATENCY, port)
    bench.servers.append(model)
    status, answer = post(fs.port, LLM.path, json.dumps(LLM.body).encode(), {"x-api-key": API_KEY})
    if status != 200:
        detail = answer[:200].decode(errors="replace")
        assert fs.log is not None
        for line in fs.log.read_text(errors="replace").splitlines():
            if "flow_file_rejected" in line and "basic-prompting" in line:
                detail = json.loads(line).get("detail", detail)
        bench.skip(LLM.name, fs.label, f"component not available: {detail}")
        stop(model)
        return
    for c in (1, 16):
        direct = measure(model, MODEL, c, bench.seconds, bench.workdir)
        row = measure(fs, LLM, c, bench.seconds, bench.workdir)
        row.note = f"added p50 {row.p50 - direct.p50:+.2f} ms, p99 {row.p99 - direct.p99:+.2f} ms"
        bench.rows += [direct, row]
        bench.echo(direct)
        bench.echo(row)
    try:
        runs = args.ttfe_runs // 4 or 1
        times = first_event_ms(fs.port, LLM_STREAM, b'"token"', runs, stamped=True)
        whole = first_event_ms(fs.port, LLM_STREAM, b'"token"', runs)
        note = (
            f"first token p50 +{statistics.median(times):.2f} ms (p99 +{pct(times, 99):.2f}) "
            "after the model sent its first chunk; "
            f"{statistics.median(whole) - LLM_LATENCY * 1000:+.2f} ms over the model's "
            f"{LLM_LATENCY * 1000:g} ms from request to first token"
        )
    except RuntimeError as exc:
        note = f"no token events: {str(exc)[:120]}"
    bench.rows.append(Row(LLM_STREAM.name, fs.label, 1, note=note))
    bench.echo(bench.rows[-1])
    stop(model)


CONC_LEVELS = (100, 1000, 2000)
CONC_LATENCY = 1.0  # seconds per model answer: a real model's order, not a benchmark's


def concurrency(bench: Bench, flows: Path, args: argparse.Namespace) -> None:
    """The LLM flow with thousands of runs in flight against a model answering in 1 s.

    A fresh flowserve process (one worker) and bench/fake_model.py (a bare asyncio
    model that answers from timers, so it never sets the pace); bench/loadgen.py
    keeps ``c`` connections busy and counts only a steady window after a warm-up.
    Ideal throughput is c / latency; "added" is flowserve's latency minus the model's
    (measured directly at the same c). Memory per in-flight run is the process's peak
    RSS during the window minus its RSS before the load, over c; CPU per run is the
    process's user+system time over the window, per answer counted in it.
    """
    model = Server(
        "fake model",
        [PYTHON, "bench/fake_model.py", "--port", "{port}", "--latency", str(CONC_LATENCY)],
        base_env(),
    )
    model.argv += ["--tokens", str(args.conc_tokens)]
    bench.servers.append(model)
    launch(model, bench.workdir)
    if not wait_listening(model.port):
        bench.skip("LLM concurrency", "fake model", "the fake model did not start")
        return
    direct = {
        c: loadgen(model.port, MODEL.path, MODEL.body, c, args, marker="", pid=0)
        for c in (max(CONC_LEVELS),)
    }
    base = direct[max(CONC_LEVELS)]
    row = Row(f"model direct ({CONC_LATENCY:g} s)", "fake model", max(CONC_LEVELS))
    row.rps, row.p50, row.p99 = base["rps"], base["p50"], base["p99"]
    row.errors = sum(base["errors"].values())
    row.note = f"{base['rps'] / (row.c / CONC_LATENCY):.1%} of ideal"
    bench.rows.append(row)
    bench.echo(row)
    stream_floor(bench, model.port, args)
    env = {**model_env(model.port), "FLOWSERVE_MAX_CONCURRENT_RUNS": "4096"}
    top = max(CONC_LEVELS)
    rows = [(CONC, "", c, 1) for c in CONC_LEVELS]
    rows += [(CONC_STREAM, '"token"', c, 1) for c in CONC_LEVELS]
    rows += [(CONC_NOSTORE, "", top, 1), (CONC_STREAM_NOSTORE, '"token"', top, 1)]
    # A streamed run costs about 0.8 ms of CPU, so one process tops out near 1,250
    # streams a second; the same instance with two workers shows what a second core buys.
    rows += [(CONC_STREAM, '"token"', top, 2)]
    for workload, marker, c, workers in rows:
        # A fresh process per row: RSS before the load is its own, and no row
        # inherits another's session history. KB per run: (peak - idle RSS) / c, so
        # with messages stored it also holds the session history the window added.
        server = flowserve("flowserve embedded", workers, flows, env)
        if not bench.up(server, workload):
            bench.skip(workload.name, server.label, f"not available: {server.failure}")
            continue
        assert server.proc is not None
        r = loadgen(server.port, workload.path, workload.body, c, args, marker, server.proc.pid)
        stop(server)
        ideal = c / CONC_LATENCY
        row = Row(workload.name, server.label, c, r["rps"], r["p50"], r["p99"])
        row.errors = sum(r["errors"].values())
        row.rss = r["rss_peak_kb"] / 1024
        per_run = (r["rss_peak_kb"] - r["rss_idle_kb"]) / c
        row.note = (
            f"{r['rps'] / ideal:.1%} of ideal; added p50 {r['p50'] - CONC_LATENCY * 1000:+.1f}"
            f" ms, p99 {r['p99'] - CONC_LATENCY * 1000:+.1f} ms; {per_run:.0f} KB/run in flight;"
            f" CPU {r['cpu_us_per_run']:.0f} us/run"
        )
        if marker:
            step = CONC_LATENCY * 1000 / args.conc_tokens
            row.note += (
                f"; first token p50 {r['first_p50']:.0f} ms (model sends it at {step:.0f} ms)"
            )
        if r["errors"]:
            row.note += f"; errors {r['errors']}"
        bench.rows.append(row)
        bench.echo(row)
    stop(model)


def stream_floor(bench: Bench, model_port: int, args: argparse.Namespace) -> None:
    """bench/stream_floor.py at c=2000: a streamed model answer relayed by a bare ASGI
    app through flowserve's provider pool. Its CPU per run is the server stack's and
    the writes' share of a streamed run, what no work on the flow path can remove."""
    c = max(CONC_LEVELS)
    argv = [PYTHON, "-m", "uvicorn", "bench.stream_floor:app", "--host", "127.0.0.1"]
    argv += ["--port", "{port}", "--log-level", "warning", "--no-access-log"]
    argv += ["--backlog", "4096"]
    url = f"http://127.0.0.1:{model_port}/v1/chat/completions"
    server = Server("stream floor x1", argv, base_env({"FLOOR_MODEL_URL": url}))
    bench.servers.append(server)
    launch(server, bench.workdir)
    if not wait_listening(server.port):
        bench.skip("stream floor", server.label, "did not start")
        return
    assert server.proc is not None
    r = loadgen(server.port, "/floor", {}, c, args, '"token"', server.proc.pid)
    stop(server)
    row = Row("stream floor (no flow)", server.label, c, r["rps"], r["p50"], r["p99"])
    row.errors = sum(r["errors"].values())
    row.rss = r["rss_peak_kb"] / 1024
    row.note = f"{r['rps'] / (c / CONC_LATENCY):.1%} of ideal; CPU {r['cpu_us_per_run']:.0f} us/run"
    bench.rows.append(row)
    bench.echo(row)


def wait_listening(port: int, seconds: float = 15.0) -> bool:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def loadgen(
    port: int,
    path: str,
    body: dict[str, Any],
    c: int,
    args: argparse.Namespace,
    marker: str,
    pid: int,
) -> dict[str, Any]:
    argv = [PYTHON, "bench/loadgen.py", "--port", str(port), "--path", path, "-c", str(c)]
    argv += ["--body", json.dumps(body), "--header", f"x-api-key:{API_KEY}"]
    argv += ["--duration", str(args.conc_duration), "--warmup", str(args.conc_warmup)]
    if marker:
        argv += ["--marker", marker]
    if pid:
        argv += ["--pid", str(pid)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def soak(bench: Bench, server: Server, runs: int, workload: Workload) -> None:
    """RSS after ``runs`` runs, sampled as it goes, to show whether it grows."""
    assert server.proc is not None
    done = 0
    samples: list[tuple[int, float]] = []
    while done < runs:
        r = wrk(server.port, workload, 16, 5, bench.workdir)
        done += r["requests"]
        samples.append((done, rss_mb(server.proc.pid)))
    first, last = samples[0], samples[-1]
    note = (
        f"RSS {first[1]:.0f} MB after {first[0] // 1000}k runs, "
        f"{last[1]:.0f} MB after {last[0] // 1000}k"
    )
    row = Row(f"soak {runs // 1000}k {workload.name}", server.label, 16, rss=last[1], note=note)
    bench.rows.append(row)
    bench.echo(row)


def postgres_mode(bench: Bench, base: Server, flows: Path, args: argparse.Namespace) -> None:
    state = ExternalState()
    label = "flowserve pg+redis x1"
    try:
        state.create()
    except Exception as exc:
        bench.skip(HELLO.name, label, f"not available: cannot create database ({exc})")
        return
    try:
        server = flowserve("flowserve pg+redis", 1, flows, state.env())
        if not bench.up(server):
            bench.skip(HELLO.name, label, f"not available: {server.failure[:200]}")
            return
        if not state.used():
            bench.skip(HELLO.name, label, "not available: this build ignores the database settings")
            stop(server)
            return
        for c in CONCURRENCY:
            bench.pair(base, server, HELLO, c)
        wrk(server.port, PROMPT, 16, 1, bench.workdir)
        bench.pair(base, server, PROMPT, 16)
        stop(server)
        if args.soak and bench.want("soak"):
            fresh = flowserve("flowserve pg+redis", 1, flows, state.env())
            if bench.up(fresh):
                soak(bench, fresh, args.soak, HELLO)
            stop(fresh)
    finally:
        state.drop()


def table(bench: Bench) -> str:
    head = (
        "workload",
        "server",
        "c",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "RSS MB",
        "cold s",
        "fs/bare",
        "note",
    )
    lines = [head]
    for r in bench.rows:
        if not r.c and not r.rps:
            lines.append((r.workload, r.server, "-", "-", "-", "-", "-", "-", "-", "-", r.note))
            continue
        measured = bool(r.rps)
        lines.append(
            (
                r.workload,
                r.server,
                str(r.c),
                f"{r.rps:.0f}" if measured else "-",
                f"{r.p50:.2f}" if measured else "-",
                f"{r.p99:.2f}" if measured else "-",
                str(r.errors) if measured else "-",
                f"{r.rss:.0f}" if r.rss else "-",
                f"{r.cold:.2f}" if r.cold is not None else "-",
                r.ratio or "-",
                r.note,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=False))
        ]
        out.append("| " + " | ".join([*cells, line[-1]]) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in [*widths, len(line[-1])]) + "|")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per row")
    parser.add_argument("--soak", type=int, default=100_000, help="runs in the RSS soak (0: skip)")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs")
    parser.add_argument("--ttfe-runs", type=int, default=200, help="streamed runs timed")
    parser.add_argument(
        "--only", default="", help="comma list of: hello,prompt,stream,llm,conc,soak,pg,workers"
    )
    parser.add_argument("--conc-duration", type=float, default=10.0, help="measured s per row")
    parser.add_argument("--conc-warmup", type=float, default=4.0, help="s before the window")
    parser.add_argument("--conc-tokens", type=int, default=5, help="chunks per streamed answer")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    began = time.time()
    bench = run(args)
    print()
    print(f"# flowserve bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(began))}")
    print(f"# {machine()}")
    print(
        f"# {' '.join(sys.argv)}; {args.duration:g} s per row, wrk -t1, one uvicorn process "
        "per server; fs/bare = flowserve req/s / bare req/s measured back to back"
    )
    if bench.want("conc"):
        print(
            f"# conc rows: bench/loadgen.py, {args.conc_duration:g} s window after "
            f"{args.conc_warmup:g} s warm-up, against bench/fake_model.py answering in "
            f"{CONC_LATENCY:g} s ({args.conc_tokens} chunks when streamed); ideal = c / latency"
        )
    print()
    print(table(bench))
    for note in bench.notes:
        print(note)


if __name__ == "__main__":
    main()
