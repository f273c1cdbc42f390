"""v2 workflow jobs: a flow run submitted with ``mode: background``, run by the worker.

A component failure is final, as in Langflow (a run is not repeated for it);
what may pass (a provider outage, a store down, the worker stopping) is retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from flowserve.errors import RunFailed
from flowserve.files import owner_from_payload
from flowserve.jobs.worker import Permanent
from flowserve.runner import Runner, RunRequest
from flowserve.store.jobs import Job
from flowserve.workflows import workflow_response


@dataclass
class WorkflowRun:
    """The handler of ``workflow`` jobs; the result is Langflow's ``WorkflowExecutionResponse``."""

    runner: Runner

    async def __call__(self, job: Job) -> Any:
        payload = job.payload
        request = msgspec.convert(payload["request"], RunRequest)
        prepared = await self.runner.prepare(
            payload["flow_id"],
            request,
            payload["variables"],
            owner_from_payload(payload.get("owner")),
        )
        try:
            response = await self.runner.execute(prepared, job_id=job.id)
        except RunFailed as exc:
            raise Permanent(exc.detail) from exc
        shaped = workflow_response(
            prepared.graph,
            response,
            flow_id=payload["flow_id"],
            job_id=job.id,
            inputs=prepared.inputs,
            globals_=payload["globals"],
            selected=payload["output_ids"],
        )
        return msgspec.to_builtins(shaped)
