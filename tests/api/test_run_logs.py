"""Components' log entries reach the run result's ``logs`` and the stream, as in Langflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import edge, flow, node
from tests.jobs.support import write_flow

CALC = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"


def calculator_flow() -> dict[str, Any]:
    return flow(
        CALC,
        [
            node("ChatInput-1", "ChatInput"),
            node("CalculatorComponent-1", "CalculatorComponent"),
            node("ChatOutput-1", "ChatOutput"),
        ],
        [
            edge("ChatInput-1", "message", "CalculatorComponent-1", "expression"),
            edge("CalculatorComponent-1", "result", "ChatOutput-1", "input_value"),
        ],
    )


async def test_component_logs_are_in_results_and_streamed(
    live_server: Any, flows_dir: Path
) -> None:
    write_flow(flows_dir, "calc.json", calculator_flow())
    body = {"input_value": "2*21", "output_type": "debug"}
    async with live_server() as server, httpx.AsyncClient(base_url=server.url) as http:
        plain = await http.post(f"/api/v1/run/{CALC}", json=body)
        streamed = await http.post(f"/api/v1/run/{CALC}?stream=true", json=body)
    assert plain.status_code == 200, plain.text
    results = {r["component_id"]: r for r in plain.json()["outputs"][0]["outputs"]}
    entry = {"name": "Log 1", "message": "Calculation result: 42", "type": "text"}
    assert results["CalculatorComponent-1"]["logs"] == {"result": [entry]}
    assert results["ChatOutput-1"]["logs"] == {"message": []}
    events = [json.loads(c) for c in streamed.text.split("\n\n") if c.strip()]
    logs = [e["data"] for e in events if e["event"] == "log"]
    assert logs == [{**entry, "component_id": "CalculatorComponent-1"}]
