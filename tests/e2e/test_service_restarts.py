"""Redis, then PostgreSQL, stopped and restarted under steady load (real processes).

Each test starts its own ``redis-server`` / PostgreSQL cluster on a spare port
(tests/faults.py), serves flowserve on them in a real uvicorn with its job worker,
and keeps a load running (session runs, stateless runs, webhooks, flow writes and
reads) while the service is stopped and started again. Every answer is recorded;
the assertions are on the sets: only 2xx or 503-with-a-detail, no hang, recovery
without restarting flowserve, nothing acknowledged lost.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.components import BUILTIN, build_registry
from flowserve.engine import Component, Data, Input, NodeContext, Output, Registry
from flowserve.settings import Settings
from tests.conftest import FLOWS, LiveServer
from tests.faults import PostgresInstance, RedisInstance
from tests.helpers import edge, flow, node
from tests.jobs import support

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
# hello-world without storing its message: a run that needs no session state.
STATELESS = {"ChatOutput-boh63": {"should_store_message": False}}
COUNTED = "7c1e2d3f-4a5b-4c6d-8e7f-901a2b3c4d5e"
# Generous bounds: they only catch a hang; the tests finish in a few seconds.
REQUEST_TIMEOUT = 20.0
RECOVERY_DEADLINE = 30.0


class CountRuns(Component):
    """Counts the runs that got this far, by the webhook body's ``n``: the side effect."""

    type_name = "TestCountRuns"
    display_name = "Count runs"
    inputs = (Input("input_value", "any", ""),)
    outputs = (Output("output", ("Data",)),)
    runs: Counter[int] = Counter()

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        value = params.get("input_value")
        body = value.data if isinstance(value, Data) else {}
        self.runs[int(body.get("n", -1))] += 1
        return {"output": value}


def registry() -> Registry:
    extra: tuple[type[Component], ...] = (CountRuns,)
    if not any(cls.type_name == "Webhook" for cls in BUILTIN):
        extra = (support.TestWebhook, *extra)
    return build_registry((*BUILTIN, *extra), plugins=False)


def counted_flow() -> dict[str, Any]:
    """Webhook -> CountRuns, endpoint ``counted``: no session state, one count per run."""
    return flow(
        COUNTED,
        [node("Webhook-1", "Webhook", data=""), node("Count-1", "TestCountRuns")],
        [edge("Webhook-1", "output_data", "Count-1", "input_value")],
        endpoint_name="counted",
    )


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisInstance]:
    directory = tmp_path / "redis"
    directory.mkdir()
    redis = await asyncio.to_thread(RedisInstance(directory).start)
    yield redis
    await asyncio.to_thread(redis.stop)


@pytest.fixture
async def own_postgres() -> AsyncIterator[PostgresInstance]:
    postgres = PostgresInstance()
    try:
        await asyncio.to_thread(postgres.init)
        yield postgres
    finally:
        await asyncio.to_thread(postgres.remove)


@pytest.fixture
def fault_settings(
    settings: Settings, flows_dir: Path, own_redis: RedisInstance, own_postgres: PostgresInstance
) -> Settings:
    (flows_dir / "counted.json").write_text(json.dumps(counted_flow()))
    return settings.replace(
        database_url=own_postgres.dsn,
        redis_url=own_redis.url,
        job_retry_base=0.05,
        job_retry_max=0.5,
        job_max_attempts=50,
        job_visibility_timeout=3.0,
        flow_cache_check=0.5,
    )


@dataclass
class Answer:
    kind: str
    phase: str
    status: int  # 0: no answer (a timeout or a dropped connection)
    body: Any
    ref: Any = None
    retry_after: str | None = None


@dataclass
class Load:
    """Fires every kind of request in a loop, recording each answer with the phase."""

    client: httpx.AsyncClient
    kinds: Mapping[str, Callable[[int], Awaitable[tuple[httpx.Response, Any]]]]
    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _record(self, answer: Answer) -> None:
        self.answers.append(answer)
        self._changed.set()

    async def _one(self, kind: str, n: int) -> None:
        phase = self.phase
        try:
            response, ref = await self.kinds[kind](n)
        except httpx.HTTPError as exc:
            self._record(Answer(kind, phase, 0, repr(exc)))
            return
        try:
            body = response.json()
        except ValueError:
            body = response.text
        retry_after = response.headers.get("retry-after")
        self._record(Answer(kind, phase, response.status_code, body, ref, retry_after))

    async def run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            await asyncio.gather(*(self._one(kind, n) for kind in self.kinds))
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    def of(self, kind: str, phase: str | None = None) -> list[Answer]:
        return [a for a in self.answers if a.kind == kind and phase in (None, a.phase)]

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(RECOVERY_DEADLINE):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            tail = [(a.kind, a.phase, a.status) for a in self.answers[-9:]]
            pytest.fail(f"no {what} within {RECOVERY_DEADLINE:g} s; last answers: {tail}")

    def assert_clean(self, service: str) -> None:
        """Only 2xx and 503s naming the service: no 500, no hang, no dropped connection."""
        bad = [a for a in self.answers if not (200 <= a.status < 300 or a.status == 503)]
        assert not bad, bad[:3]
        for answer in self.answers:
            if answer.status == 503:
                assert f"{service} is unavailable" in answer.body["detail"], answer
                assert answer.retry_after == "1", answer


def last_ok(load: Load, kind: str, count: int = 3) -> bool:
    tail = load.of(kind)[-count:]
    return len(tail) == count and all(200 <= a.status < 300 for a in tail)


Request = Callable[[int], Awaitable[tuple[httpx.Response, Any]]]


def requests(client: httpx.AsyncClient, session: str) -> dict[str, Request]:
    """Every kind of request the load sends; each returns its answer and what it wrote."""
    document = json.loads((FLOWS / "hello-world.json").read_text())

    async def session_run(n: int) -> tuple[httpx.Response, Any]:
        body = {"input_value": f"m{n}", "session_id": session}
        return await client.post("/api/v1/run/prompt-echo", json=body), n

    async def stateless_run(n: int) -> tuple[httpx.Response, Any]:
        body = {"input_value": f"m{n}", "tweaks": STATELESS}
        return await client.post(f"/api/v1/run/{HELLO}", json=body), n

    async def webhook(n: int) -> tuple[httpx.Response, Any]:
        return await client.post("/api/v1/webhook/counted", json={"n": n}), n

    async def write(n: int) -> tuple[httpx.Response, Any]:
        flow_id = str(uuid.uuid4())
        body = {**document, "id": flow_id, "name": f"w{n}", "endpoint_name": None}
        return await client.post("/api/v1/flows/", json=body), flow_id

    async def read(n: int) -> tuple[httpx.Response, Any]:
        return await client.get(f"/api/v1/flows/{HELLO}"), n

    return {
        "session": session_run,
        "stateless": stateless_run,
        "hook": webhook,
        "write": write,
        "read": read,
    }


async def assert_every_job_ran_once(client: httpx.AsyncClient, load: Load) -> None:
    """Every webhook acknowledged (202) ran to success, exactly once."""
    accepted = {a.ref: a.body["job_id"] for a in load.of("hook") if a.status == 202}
    async with asyncio.timeout(RECOVERY_DEADLINE):
        while True:
            jobs = [(await client.get(f"/api/v1/jobs/{j}")).json() for j in accepted.values()]
            if all(job["status"] in ("succeeded", "failed") for job in jobs):
                break
            await asyncio.sleep(0.2)
    assert {job["status"] for job in jobs} == {"succeeded"}
    assert {n: CountRuns.runs[n] for n in accepted} == dict.fromkeys(accepted, 1)


async def assert_session_kept(client: httpx.AsyncClient, load: Load, session: str) -> None:
    """The session holds every message of every run that was answered 200."""
    response = await client.get(f"/api/v1/sessions/{session}")
    assert response.status_code == 200, response.text
    stored = {m["text"] for m in response.json()["messages"] if m["sender"] == "User"}
    assert {f"m{a.ref}" for a in load.of("session") if a.status == 200} <= stored


def statuses(load: Load, kind: str, phase: str | None = None) -> set[int]:
    return {a.status for a in load.of(kind, phase)}


async def test_redis_crashed_and_restarted_under_load(
    fault_settings: Settings, own_redis: RedisInstance
) -> None:
    CountRuns.runs.clear()
    async with (
        LiveServer(create_app(fault_settings, registry=registry())) as server,
        httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT) as client,
    ):
        session = f"s-{uuid.uuid4().hex[:6]}"
        kinds = requests(client, session)
        load = Load(client, {k: kinds[k] for k in ("session", "stateless", "hook", "write")})
        runner = asyncio.create_task(load.run())
        try:
            await load.until(lambda: len(load.of("hook")) >= 10, "load warmed up")
            load.phase = "outage"
            # A crash, not a shutdown: what was acknowledged is in the append-only file.
            await asyncio.to_thread(own_redis.stop, signal.SIGKILL)
            await load.until(
                lambda: sum(a.status == 503 for a in load.of("session", "outage")) >= 3,
                "503s during the outage",
            )
            load.phase = "restart"
            await asyncio.to_thread(own_redis.start)
            await load.until(lambda: last_ok(load, "session") and last_ok(load, "hook"), "recovery")
            load.phase = "after"
            await load.until(lambda: len(load.of("hook", "after")) >= 10, "load after recovery")
        finally:
            load.stop()
            await runner

        load.assert_clean("Redis")
        # Runs that keep no session state, and flow writes, never needed Redis.
        assert statuses(load, "stateless") == {200}
        assert statuses(load, "write") == {201}
        assert statuses(load, "session", "outage") >= {503}
        assert statuses(load, "hook", "outage") >= {503}
        assert statuses(load, "session", "after") == {200}
        assert statuses(load, "hook", "after") == {202}
        await assert_every_job_ran_once(client, load)
        await assert_session_kept(client, load, session)


async def test_postgres_crashed_and_restarted_under_load(
    fault_settings: Settings, own_postgres: PostgresInstance
) -> None:
    CountRuns.runs.clear()
    async with (
        LiveServer(create_app(fault_settings, registry=registry())) as server,
        httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT) as client,
    ):
        session = f"s-{uuid.uuid4().hex[:6]}"
        kinds = requests(client, session)
        # Warm the cache: a run of a compiled flow needs no database afterwards.
        for kind in ("stateless", "session", "hook"):
            assert (await kinds[kind](0))[0].status_code < 300
        load = Load(
            client, {k: kinds[k] for k in ("write", "read", "stateless", "session", "hook")}
        )
        runner = asyncio.create_task(load.run())
        try:
            await load.until(lambda: len(load.of("write")) >= 10, "load warmed up")
            load.phase = "outage"
            # pg_ctl stop -m immediate: no shutdown checkpoint, recovery from the WAL.
            await asyncio.to_thread(own_postgres.stop, "immediate")
            await load.until(
                lambda: sum(a.status == 503 for a in load.of("write", "outage")) >= 3,
                "503s during the outage",
            )
            load.phase = "restart"
            await asyncio.to_thread(own_postgres.start)
            await load.until(lambda: last_ok(load, "write") and last_ok(load, "read"), "recovery")
            load.phase = "after"
            await load.until(lambda: len(load.of("write", "after")) >= 10, "load after recovery")
        finally:
            load.stop()
            await runner

        load.assert_clean("PostgreSQL")
        # Flows already compiled here run from the cache: the outage never reached them,
        # nor their sessions (Redis) or webhook jobs.
        assert statuses(load, "stateless") == {200}
        assert statuses(load, "session") == {200}
        assert statuses(load, "hook") == {202}
        assert statuses(load, "write", "outage") >= {503}
        assert statuses(load, "read", "outage") >= {503}
        assert statuses(load, "write", "after") == {201}
        assert statuses(load, "read", "after") == {200}

        # Every flow write that was acknowledged is there, after a crash of the database.
        written = {a.ref for a in load.of("write") if a.status == 201}
        listing = (await client.get("/api/v1/flows/", params={"get_all": "true"})).json()
        assert written <= {f["id"] for f in listing}
        await assert_every_job_ran_once(client, load)
        await assert_session_kept(client, load, session)
