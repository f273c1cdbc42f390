"""Test-only components, flows and a signature-checking HTTP receiver for the job tests.

Until the real Webhook component lands (issue 4), ``TestWebhook`` stands in
for it with Langflow's behaviour: the ``data`` text parsed as JSON, anything
else as ``{"payload": text}``, output ``output_data`` as Data.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flowserve.components import BUILTIN, build_registry
from flowserve.engine import Component, Data, Input, NodeContext, Output, Registry
from tests.conftest import LiveServer
from tests.helpers import Boom, Gate, edge, flow, node

ROOT = Path(__file__).resolve().parents[2]


class TestWebhook(Component):
    type_name = "Webhook"
    display_name = "Webhook"
    inputs = (Input("data", "str", ""),)
    outputs = (Output("output_data", ("Data",), "Data", "build_data"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        text = params.get("data") or ""
        try:
            body = json.loads(text or "{}")
        except json.JSONDecodeError:
            body = {"payload": text}
        return {"output_data": Data(body if isinstance(body, dict) else {"value": body})}


class Sleep(Component):
    """Passes its input on after ``seconds``: a run that takes a while."""

    type_name = "TestSleep"
    display_name = "Sleep"
    inputs = (Input("input_value", "any", ""), Input("seconds", "float", 0.0))
    outputs = (Output("output", ("Data", "Message")),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(float(params.get("seconds") or 0))
        return {"output": params.get("input_value")}


def webhook_registry() -> Registry:
    extra: tuple[type[Component], ...] = (Sleep, Gate, Boom)
    if not any(cls.type_name == "Webhook" for cls in BUILTIN):
        extra = (TestWebhook, *extra)
    return build_registry((*BUILTIN, *extra), plugins=False)


SLOW = "5d1f0a3c-9e2b-4c7d-8a6f-1b2c3d4e5f60"
FAILING = "6e2a1b4d-0f3c-4d8e-9b7a-2c3d4e5f6a71"
WEBHOOK_ECHO = "9b2f1d7e-5c4a-4e8b-8f31-6a0d2c9e7b55"


def slow_flow(seconds: float) -> dict[str, Any]:
    """Webhook -> Sleep -> ChatOutput, endpoint ``slow``."""
    return flow(
        SLOW,
        [
            node("Webhook-1", "Webhook", data=""),
            node("Sleep-1", "TestSleep", seconds=seconds),
            node("ChatOutput-1", "ChatOutput"),
        ],
        [
            edge("Webhook-1", "output_data", "Sleep-1", "input_value"),
            edge("Sleep-1", "output", "ChatOutput-1", "input_value"),
        ],
        endpoint_name="slow",
    )


def failing_flow() -> dict[str, Any]:
    """Webhook -> Boom -> ChatOutput: every run fails."""
    return flow(
        FAILING,
        [
            node("Webhook-1", "Webhook", data=""),
            node("Boom-1", "TestBoom"),
            node("ChatOutput-1", "ChatOutput"),
        ],
        [
            edge("Webhook-1", "output_data", "Boom-1", "input_value"),
            edge("Boom-1", "text", "ChatOutput-1", "input_value"),
        ],
    )


def write_flow(directory: Path, name: str, document: dict[str, Any]) -> None:
    (directory / name).write_text(json.dumps(document))


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """A subscriber on 127.0.0.1 that checks every signature with the reference library.

    ``fail_first`` answers 500 to the first N attempts of every message id.
    """

    secret: str = ""
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        raw = await request.body()
        headers = dict(request.headers)
        try:
            Webhook(self.secret).verify(raw, headers)
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return Response(status_code=400)
        message_id = headers["webhook-id"]
        self.attempts[message_id] = self.attempts.get(message_id, 0) + 1
        if self.attempts[message_id] <= self.fail_first:
            return Response(status_code=500)
        self.received.append(Received(headers, json.loads(raw)))
        self.changed.set()
        return Response(status_code=204)

    def unique(self) -> list[Received]:
        """Deliveries de-duplicated on webhook-id, as the spec tells receivers to."""
        seen: dict[str, Received] = {}
        for item in self.received:
            seen.setdefault(item.headers["webhook-id"], item)
        return list(seen.values())

    async def wait_for(self, predicate: Any, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


class ReceiverServer(LiveServer):
    """A Receiver behind a real uvicorn on loopback; ``url`` is its hook's address."""

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(
            Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])]),
            lifespan="off",
        )
        self.url = f"{self.url}/hook"


def start_worker(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A real ``flowserve worker`` process (with the test registry), settings from ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVE_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.jobs.worker_main"],
            cwd=ROOT,
            env={**clean, **env},
            stdout=out,
            stderr=out,
        )
