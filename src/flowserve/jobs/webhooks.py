"""Incoming webhooks as jobs: the body a flow's Webhook component receives, and the run.

Like Langflow, a JSON body reaches the Webhook component as it was sent; any
other body (form-encoded, plain text, invalid JSON) arrives as
``{"payload": "<raw body>"}``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from flowserve.engine import RunOwner
from flowserve.files import owner_from_payload, owner_payload
from flowserve.runner import Runner
from flowserve.store.jobs import Job

WEBHOOK = "webhook"


def webhook_data(body: bytes) -> str:
    """The text handed to the Webhook component's ``data`` field."""
    text = body.decode("utf-8", errors="replace")
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return msgspec.json.encode({"payload": text}).decode()
    return text


def webhook_job(
    flow_id: str, body: bytes, *, max_attempts: int, owner: RunOwner | None = None
) -> Job:
    payload: dict[str, Any] = {"flow_id": flow_id, "data": webhook_data(body)}
    if owner is not None:  # the key that submitted: the run reads and saves its files
        payload["owner"] = owner_payload(owner)
    return Job(
        id=uuid.uuid4().hex,
        kind=WEBHOOK,
        flow_id=flow_id,
        max_attempts=max_attempts,
        created_at=time.time(),
        payload=payload,
    )


@dataclass
class WebhookRun:
    """The handler of ``webhook`` jobs: run the flow, the result is Langflow's run response."""

    runner: Runner

    async def __call__(self, job: Job) -> Any:
        prepared = await self.runner.prepare_webhook(
            job.payload["flow_id"],
            job.payload["data"],
            owner_from_payload(job.payload.get("owner")),
        )
        response = await self.runner.execute(prepared, job_id=job.id)
        return msgspec.to_builtins(response)
