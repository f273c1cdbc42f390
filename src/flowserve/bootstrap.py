"""The composition root: open stores, pools and clients once, for app, worker and tests.

``async with open_services(settings) as services:`` yields everything a
request needs and closes it all on exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from flowserve.components import build_registry
from flowserve.credentials import Authenticator, bootstrap_authenticator
from flowserve.engine import Registry
from flowserve.errors import FlowserveError
from flowserve.flowfile import load_document, parse_flow
from flowserve.runner import Runner, compile_graph
from flowserve.settings import Settings, process_environment
from flowserve.store.base import FlowRecord, FlowStore, MessageStore
from flowserve.store.memory import MemoryFlowStore, MemoryMessageStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    flows: FlowStore
    messages: MessageStore
    registry: Registry
    runner: Runner
    http: httpx.AsyncClient
    # Who is calling; the key store replaces the bootstrap default (see credentials.py).
    authenticate: Authenticator

    async def health(self) -> dict[str, str]:
        """Each store's state: "ok" or why it is not."""
        states: dict[str, str] = {}
        for name, store in (("flows", self.flows), ("messages", self.messages)):
            try:
                await store.ping()
            except FlowserveError as exc:
                states[name] = f"error: {exc.detail}"
            else:
                states[name] = "ok"
        return states


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    environment: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> AsyncIterator[Services]:
    registry = registry if registry is not None else build_registry()
    flows = MemoryFlowStore()
    messages = MemoryMessageStore()
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False) as http:
        runner = Runner(
            flows=flows,
            messages=messages,
            registry=registry,
            environment=process_environment() if environment is None else environment,
            session_ttl=settings.session_ttl,
            run_timeout=settings.run_timeout,
            services={"http": http},
        )
        services = Services(
            settings=settings,
            flows=flows,
            messages=messages,
            registry=registry,
            runner=runner,
            http=http,
            authenticate=bootstrap_authenticator(settings),
        )
        await seed_flows(services, settings.flows_path)
        yield services


def record_from_document(
    document: dict[str, object], *, default_id: str | None = None
) -> FlowRecord:
    flow = parse_flow(document, default_id=default_id)
    return FlowRecord(
        id=flow.id,
        name=flow.name,
        data=flow.raw,
        description=flow.description,
        endpoint_name=flow.endpoint_name,
        access_type=flow.access_type,
        webhook=flow.webhook,
        mcp_enabled=flow.mcp_enabled,
        folder_id=flow.folder_id,
    )


async def seed_flows(services: Services, directory: Path) -> list[FlowRecord]:
    """Upsert every ``*.json`` flow in ``directory`` by id; invalid files are logged, skipped."""
    seeded: list[FlowRecord] = []
    for path, content in await asyncio.to_thread(read_flow_files, directory):
        try:
            record = record_from_document(load_document(content))
            compile_graph(record, services.registry)
            stored, _ = await services.flows.upsert(record)
        except FlowserveError as exc:
            log.error("flow_file_rejected", path=str(path), detail=exc.detail, code=exc.code)
            continue
        seeded.append(stored)
        log.info(
            "flow_loaded",
            path=str(path),
            flow_id=stored.id,
            name=stored.name,
            endpoint_name=stored.endpoint_name,
        )
    return seeded


def read_flow_files(directory: Path) -> list[tuple[Path, bytes]]:
    if not directory.is_dir():
        return []
    return [(path, path.read_bytes()) for path in sorted(directory.glob("*.json"))]
