"""Flows and calls shared by the knowledge-base tests: an ingest flow (text, split into
lines, into a knowledge base), a retrieve flow, and how to run them over HTTP with the
fake provider's endpoint and a caller's key as Langflow global variables."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import FIXTURES
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import edge, flow, node

INGEST = "11111111-1111-4111-8111-111111111111"
RETRIEVE = "22222222-2222-4222-8222-222222222222"
KNOWLEDGE_RETRIEVAL = FIXTURES / "starter-projects" / "Knowledge Retrieval.json"

DOCUMENT = "\n".join(
    [
        "Invoices are paid within thirty days of receipt.",
        "The office cat is called Biscuit and likes tuna.",
        "Refunds are issued to the original payment card.",
        "Parking is free for visitors on weekends.",
        "Biscuit the cat sleeps on the reception desk.",
    ]
)


def ingest_flow() -> dict[str, Any]:
    return flow(
        INGEST,
        [
            node("ChatInput-in", "ChatInput"),
            node("SplitText-s", "SplitText", chunk_size=60, chunk_overlap=0, separator="\n"),
            node("Knowledge-ingest", "Knowledge", mode="Ingest", knowledge_base="docs"),
            node("ChatOutput-out", "ChatOutput"),
        ],
        [
            edge("ChatInput-in", "message", "SplitText-s", "data_inputs"),
            edge("SplitText-s", "dataframe", "Knowledge-ingest", "input_df"),
            edge("Knowledge-ingest", "dataframe_output", "ChatOutput-out", "input_value"),
        ],
    )


FILE_INGEST = "33333333-3333-4333-8333-333333333333"


def file_ingest_flow() -> dict[str, Any]:
    """File (its path a tweak, as Langflow's docs show) -> Split Text -> Knowledge."""
    return flow(
        FILE_INGEST,
        [
            node("File-f", "File", path=""),
            node("SplitText-s", "SplitText", chunk_size=60, chunk_overlap=0, separator="\n"),
            node("Knowledge-ingest", "Knowledge", mode="Ingest", knowledge_base="docs"),
            node("ChatOutput-out", "ChatOutput"),
        ],
        [
            edge("File-f", "message", "SplitText-s", "data_inputs"),
            edge("SplitText-s", "dataframe", "Knowledge-ingest", "input_df"),
            edge("Knowledge-ingest", "dataframe_output", "ChatOutput-out", "input_value"),
        ],
    )


def retrieve_flow() -> dict[str, Any]:
    return flow(
        RETRIEVE,
        [
            node("ChatInput-q", "ChatInput"),
            node("Knowledge-r", "Knowledge", mode="Retrieve", knowledge_base="docs", top_k=2),
            node("parser-p", "parser", mode="Parser", pattern="[{content}]", sep="\n"),
            node("ChatOutput-out", "ChatOutput"),
        ],
        [
            edge("ChatInput-q", "message", "Knowledge-r", "search_query"),
            edge("Knowledge-r", "retrieve_data", "parser-p", "input_data"),
            edge("parser-p", "parsed_text", "ChatOutput-out", "input_value"),
        ],
    )


def provider_headers(fake: FakeOpenAI) -> dict[str, str]:
    return {
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_API_KEY": "sk-caller",
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_BASE_URL": fake.base_url,
    }


async def run(
    http: httpx.AsyncClient,
    fake: FakeOpenAI,
    flow_id: str,
    text: str,
    tweaks: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"input_value": text}
    if tweaks:
        body["tweaks"] = tweaks
    return await http.post(
        f"/api/v1/run/{flow_id}", json=body, headers={**provider_headers(fake), **(headers or {})}
    )


def ingest_report(response: httpx.Response) -> dict[str, Any]:
    text = output_text(response)
    result: dict[str, Any] = json.loads(text.removeprefix("```json").removesuffix("```"))
    return result


def output_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    return text


async def ingest(http: httpx.AsyncClient, fake: FakeOpenAI, **tweaks: Any) -> dict[str, Any]:
    response = await run(
        http, fake, INGEST, DOCUMENT, {"Knowledge-ingest": tweaks} if tweaks else None
    )
    return ingest_report(response)
