"""Run a flow in this process, without a server: ``flowserve.run_flow("flow.json", ...)``.

The same parser, engine and runner the server uses, on in-process stores.
Conversation memory lives as long as the process, so calls with the same
``session_id`` continue a conversation. Global variables (provider keys, ...)
come from the process environment, overlaid with ``variables``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from flowserve.bootstrap import component_services, open_vector_store, record_from_document
from flowserve.client._models import RunResult
from flowserve.components import build_registry
from flowserve.components.outbound import new_http_client
from flowserve.engine import Registry
from flowserve.errors import InvalidFlow
from flowserve.flowfile import load_document
from flowserve.runner import Runner, RunRequest
from flowserve.settings import Settings, process_environment
from flowserve.store.memory import MemoryMessageStore
from flowserve.store.sqlite import SqliteFlowStore

FlowSource = str | Path | bytes | Mapping[str, Any]

# One conversation memory for every embedded run of this process.
_MESSAGES = MemoryMessageStore()


@functools.cache
def _default_registry() -> Registry:
    return build_registry()


def _document(flow: FlowSource) -> dict[str, Any]:
    if isinstance(flow, Mapping):
        return dict(flow)
    if isinstance(flow, bytes):
        return load_document(flow)
    path = Path(flow)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise InvalidFlow(f"cannot read flow file {path}: {exc.strerror}") from exc
    return load_document(content)


async def arun_flow(
    flow: FlowSource,
    input_value: str | None = None,
    *,
    tweaks: Mapping[str, Any] | None = None,
    session_id: str | None = None,
    input_type: Literal["chat", "text", "any"] = "chat",
    output_type: Literal["chat", "text", "any", "debug"] = "chat",
    output_component: str | None = None,
    variables: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    run_timeout: float | None = None,
) -> RunResult:
    """Run a flow (a file path, JSON bytes or a decoded document) and return its result.

    Raises the server's errors (``flowserve.errors``): ``InvalidFlow``,
    ``InvalidTweaks``, ``RunFailed``, ... with the same details.
    """
    settings = Settings()
    registry = registry if registry is not None else _default_registry()
    record = record_from_document(_document(flow))
    # A private in-memory database: the same store code the server runs, nothing on disk.
    flows = await SqliteFlowStore.open(":memory:")
    try:
        stored, _ = await flows.upsert(record)
        environment = process_environment()
        async with new_http_client(settings.http_pool_limit, settings.http_pool_timeout) as http:
            runner = Runner(
                flows=flows,
                messages=_MESSAGES,
                registry=registry,
                environment=environment,
                session_ttl=settings.session_ttl,
                run_timeout=run_timeout or settings.run_timeout,
                services=component_services(
                    settings, http, environment, vectors=open_vector_store(flows)
                ),
            )
            request = RunRequest(
                input_value=input_value,
                input_type=input_type,
                output_type=output_type,
                output_component=output_component,
                tweaks=dict(tweaks) if tweaks else None,
                session_id=session_id,
            )
            prepared = await runner.prepare(stored.id, request, variables)
            response = await runner.execute(prepared)
    finally:
        await flows.close()
    return RunResult.from_body(msgspec.to_builtins(response))


def run_flow(
    flow: FlowSource,
    input_value: str | None = None,
    *,
    tweaks: Mapping[str, Any] | None = None,
    session_id: str | None = None,
    input_type: Literal["chat", "text", "any"] = "chat",
    output_type: Literal["chat", "text", "any", "debug"] = "chat",
    output_component: str | None = None,
    variables: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    run_timeout: float | None = None,
) -> RunResult:
    """The blocking form of ``arun_flow``, for scripts; inside an event loop, await that."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "flowserve.run_flow() cannot block inside a running event loop; "
            "use 'await flowserve.arun_flow(...)' instead"
        )
    return asyncio.run(
        arun_flow(
            flow,
            input_value,
            tweaks=tweaks,
            session_id=session_id,
            input_type=input_type,
            output_type=output_type,
            output_component=output_component,
            variables=variables,
            registry=registry,
            run_timeout=run_timeout,
        )
    )
