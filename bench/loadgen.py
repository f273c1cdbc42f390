"""Closed-loop load with thousands of connections, measured over a steady window.

wrk counts every request of a run, ramp-up included: against a 1 s model the
first second completes nothing, so a 10 s run reads 10% under the truth. This
generator opens ``-c`` keep-alive connections, each sending the same POST as
soon as its previous answer is complete, and counts only answers that finish
inside the window after ``--warmup`` seconds. It is a bare asyncio protocol
(uvloop when installed) so that it costs a small share of a core at 2,000
requests a second.

For streamed runs (``--marker``) it also times each answer's first chunk
containing the marker (the first token event): from the request being sent,
so buffering shows as a first token arriving with the last.

While the window is open it samples the resident memory of ``--pid`` (and its
children): the peak, and the same process's RSS before the load started; and
the CPU time they spent over the window, per answer counted in it.

Prints one JSON line: requests, seconds, rps, p50/p99 latency (ms), first
marker p50/p99 (ms), errors by kind, rss_idle/rss_peak (kB), cpu_us_per_run.

    python bench/loadgen.py --port 7860 --path /api/v1/run/ID -c 2000 \\
        --body '{"input_value": "hi"}' --header x-api-key:KEY --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``exchange`` sends the request, returns when answered."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.head_end = -1
        self.status = 0
        self.length = -1  # -1: chunked (or until close)
        self.first_marker = 0.0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def exchange(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.buffer.clear()
        self.head_end, self.status, self.length, self.first_marker = -1, 0, -1, 0.0
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.marker and not self.first_marker and self.marker in data:
            self.first_marker = time.perf_counter()
        self.buffer += data
        if self.head_end < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head_end = end + 4
            head = bytes(self.buffer[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                self.length = int(head[at + 15 : stop if stop >= 0 else len(head)])
            if self.marker and not self.first_marker and self.marker in self.buffer:
                self.first_marker = time.perf_counter()
        if self.length >= 0:
            done = len(self.buffer) - self.head_end >= self.length
        else:
            done = self.buffer.endswith(b"\r\n0\r\n\r\n")
        if done and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.status)


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        body = args.body.encode()
        headers = "".join(f"{h.split(':', 1)[0]}: {h.split(':', 1)[1]}\r\n" for h in args.header)
        self.request = (
            f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
            f"Content-Type: application/json\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.args = args
        self.marker = args.marker.encode()
        self.latencies: list[float] = []
        self.firsts: list[float] = []
        self.errors: dict[str, int] = {}
        self.window = (0.0, 0.0)
        self.stopping = False

    def error(self, kind: str) -> None:
        began, end = self.window
        if began <= time.perf_counter() <= end or not began:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        for attempt in range(50):
            try:
                _, conn = await loop.create_connection(
                    lambda: Connection(self.marker), self.args.host, self.args.port
                )
                return conn
            except OSError:
                self.error("connect")
                await asyncio.sleep(0.05 * (attempt + 1))
        raise ConnectionError("cannot connect")

    async def client(self, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        conn = await self.connect()
        while not self.stopping:
            sent = time.perf_counter()
            try:
                status = await asyncio.wait_for(conn.exchange(self.request), self.args.timeout)
            except (ConnectionError, TimeoutError):
                self.error("timeout" if not conn.lost else "read")
                if conn.transport is not None:
                    conn.transport.close()
                conn = await self.connect()
                continue
            done = time.perf_counter()
            began, end = self.window
            if began <= done <= end:
                if status != 200:
                    self.error(f"status {status}")
                else:
                    self.latencies.append(done - sent)
                    if self.marker:
                        if conn.first_marker:
                            self.firsts.append(conn.first_marker - sent)
                        else:
                            self.error("no marker")
            if conn.lost:
                conn = await self.connect()

    async def run(self) -> dict[str, Any]:
        args = self.args
        idle = rss_kb(args.pid) if args.pid else 0
        now = time.perf_counter()
        # Spread the first requests over the ramp, so they do not all arrive in one tick.
        ramp = min(args.warmup / 2, 1.0)
        tasks = [asyncio.create_task(self.client(now + ramp * i / args.c)) for i in range(args.c)]
        began = now + args.warmup
        self.window = (began, began + args.duration)
        peak = idle
        cpu_at: list[float] = []  # the process's CPU seconds at the window's start and end
        while time.perf_counter() < self.window[1]:
            to_window = began - time.perf_counter()  # wake at its start to read the CPU
            await asyncio.sleep(to_window if 0 < to_window < 0.25 else 0.25)
            if args.pid and time.perf_counter() >= began:
                if not cpu_at:
                    cpu_at.append(cpu_seconds(args.pid))
                peak = max(peak, rss_kb(args.pid))
        if cpu_at:
            cpu_at.append(cpu_seconds(args.pid))
        self.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        lat = sorted(self.latencies)
        firsts = sorted(self.firsts)
        return {
            "c": args.c,
            "requests": len(lat),
            "seconds": args.duration,
            "rps": len(lat) / args.duration,
            "p50": pct(lat, 50) * 1000,
            "p99": pct(lat, 99) * 1000,
            "first_p50": pct(firsts, 50) * 1000,
            "first_p99": pct(firsts, 99) * 1000,
            "errors": self.errors,
            "rss_idle_kb": idle,
            "rss_peak_kb": peak,
            # CPU the server spent per answer over the window: what sets a core's ceiling.
            "cpu_us_per_run": (cpu_at[1] - cpu_at[0]) / len(lat) * 1e6 if cpu_at and lat else 0.0,
        }


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def family(pid: int) -> list[int]:
    """The process and its children (uvicorn workers)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    return pids


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of the process and its children so far."""
    ticks = 0
    for member in family(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """Resident kB of the process and its children (uvicorn workers)."""
    total = 0
    for member in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", default="{}")
    parser.add_argument("--header", action="append", default=[], help="name:value")
    parser.add_argument("-c", type=int, default=100, help="connections (clients)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--marker", default="", help="time the first chunk containing this")
    parser.add_argument("--pid", type=int, default=0, help="sample this process's RSS")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(Load(args).run())
    else:
        result = uvloop.run(Load(args).run())
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
