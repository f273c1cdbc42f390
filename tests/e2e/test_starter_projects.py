"""All 27 Langflow 1.13 starter projects, unmodified, loaded and run over HTTP.

The model is the fake OpenAI server on loopback, chosen per run as a user
would: a ``model`` tweak on every node with a model field, the key and base
URL as X-LANGFLOW-GLOBAL-VAR headers. Outbound hosts are unreachable (tests
resolve no external name), so a starter whose components must reach the
internet before any model speaks ends in a clean 4xx/502 naming that
component, never a 500. Starters with a File node get an uploaded file.
Separate tests then point arXiv, AssemblyAI, web search and the SQL database
at loopback fakes and check those starters end to end.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_llm_flows import events_of, provider_headers
from tests.fakes.arxiv_server import FakeArxiv
from tests.fakes.assemblyai_server import KEY, FakeAssemblyAI
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import ThreadedServer

STARTERS = Path(__file__).parent.parent / "fixtures" / "starter-projects"
MODEL = [{"name": "gpt-4o-mini", "provider": "OpenAI"}]


@dataclass(frozen=True)
class Expect:
    """What one starter answers. 200: ``output`` is in the reported text. Otherwise
    ``status`` and ``names``: the node id the error's detail must name."""

    status: int = 200
    output: str = "Echo: "
    names: str = ""
    input: str = "Tell me about flowserve"
    # A text file uploaded first and handed to the File node(s) as their `path` tweak.
    upload: str = ""


# The fake model echoes: a JSON company profile in the input comes back as the
# structured answer Market Research's Structured Output wants.
PROFILE = json.dumps(
    {
        "domain": "acme.example",
        "linkedinUrl": "https://linkedin.example/acme",
        "cheapestPlan": "9",
        "hasFreeTrial": True,
        "hasEnterprisePlan": True,
        "hasAPI": True,
        "market": "B2B",
        "pricingTiers": ["Free", "Pro"],
        "KeyFeatures": ["Flows"],
        "targetIndustries": ["Software"],
    }
)
REPORT = "ACME Corp annual report 2026. Revenue: 12.5M USD. Net income: 1.1M USD."

EXPECTED: dict[str, Expect] = {
    "Basic Prompting": Expect(output="Echo: Tell me about flowserve"),
    "Blog Writer": Expect(input="https://example.org/post", output="Echo: "),
    # Web search feeds Batch Run directly: no network, so the search fails first.
    "Content Aggregator": Expect(502, names="WebSearch-ca"),
    "Custom Component Generator": Expect(),
    "Deep Research Agent": Expect(),
    "Document Q&A": Expect(),
    # The echoing fake fills no figures, but the report reached the model and the
    # parser rendered the structured answer as its metric table.
    "Financial Report Parser": Expect(output="| Revenue |", upload=REPORT),
    # AstraDB has no faithful mapping: a 422 naming it.
    "Hybrid Search RAG": Expect(422, names="AstraDB", upload=REPORT),
    "Image Sentiment Analysis": Expect(),
    "Instagram Copywriter": Expect(),
    "Knowledge Retrieval": Expect(output=""),
    "Market Research": Expect(input=PROFILE, output="acme.example"),
    # The flow holds no AssemblyAI key: refused before any call.
    "Meeting Summary": Expect(422, names="AAITranscriber-ms"),
    "Memory Chatbot": Expect(output="Echo: Tell me about flowserve"),
    "Multi Agent Flow": Expect(),
    "Portfolio Website Code Generator": Expect(upload="Ada Lovelace, engineer."),
    "Price Deal Finder": Expect(),
    # arXiv is on the internet: a 502 naming it (the loop is tested with a fake below).
    "Research Translation Loop": Expect(502, names="ArXivComponent-zGqWh"),
    "SEO Keyword Generator": Expect(),
    "SaaS Pricing": Expect(output="Echo: Tell me about flowserve"),
    "Sequential Tasks Agents": Expect(),
    "Simple Agent": Expect(output="Echo: Tell me about flowserve"),
    "Social Media Agent": Expect(),
    "Text Sentiment Analysis": Expect(upload="I love this product. Shipping was slow."),
    "Travel Planning Agents": Expect(),
    "Twitter Thread Generator": Expect(),
    "Vector Store RAG": Expect(upload=REPORT),
}


def test_the_table_covers_every_starter_project() -> None:
    assert sorted(p.stem for p in STARTERS.glob("*.json")) == sorted(EXPECTED)
    assert len(EXPECTED) == 27


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((STARTERS / f"{name}.json").read_text())
    return document


def nodes_of(document: dict[str, Any], type_name: str) -> list[str]:
    return [n["id"] for n in document["data"]["nodes"] if n["data"].get("type") == type_name]


def model_tweaks(document: dict[str, Any]) -> dict[str, Any]:
    """A model for every node that has a model field, as a user picks one."""
    tweaks: dict[str, Any] = {}
    for node in document["data"]["nodes"]:
        field = node["data"].get("node", {}).get("template", {}).get("model")
        if isinstance(field, dict) and field.get("type") == "model":
            tweaks[node["id"]] = {"model": MODEL}
    return tweaks


def output_text(body: dict[str, Any]) -> str:
    texts = []
    for result in body["outputs"][0]["outputs"]:
        texts.extend(m["message"] for m in result["messages"])
    return "\n".join(texts)


async def upload(http: httpx.AsyncClient, base: str, text: str) -> str:
    response = await http.post(
        f"{base}/api/v2/files", files={"file": ("report.txt", text.encode(), "text/plain")}
    )
    assert response.status_code in (200, 201), response.text
    path: str = response.json()["path"]
    return path


async def run_starter(
    http: httpx.AsyncClient,
    base: str,
    name: str,
    fake: FakeOpenAI,
    *,
    input_value: str,
    tweaks: dict[str, Any] | None = None,
    upload_text: str = "",
    stream: bool = False,
) -> httpx.Response:
    document = load(name)
    all_tweaks = model_tweaks(document)
    if upload_text:
        path = await upload(http, base, upload_text)
        for node_id in nodes_of(document, "File"):
            all_tweaks[node_id] = {"path": [path]}
    for node_id, fields in (tweaks or {}).items():
        all_tweaks.setdefault(node_id, {}).update(fields)
    return await http.post(
        f"{base}/api/v1/run/{document['id']}" + ("?stream=true" if stream else ""),
        json={"input_value": input_value, "tweaks": all_tweaks},
        headers=provider_headers(fake),
    )


def install(flows_dir: Path, name: str) -> None:
    shutil.copy(STARTERS / f"{name}.json", flows_dir / f"{name}.json")


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_starter_project_loads_and_runs(
    name: str, live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI
) -> None:
    expect = EXPECTED[name]
    install(flows_dir, name)
    async with (
        live_server(outbound_allowlist="127.0.0.1") as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        loaded = await http.get(f"{server.url}/api/v1/flows/{load(name)['id']}")
        assert loaded.status_code == 200, loaded.text
        response = await run_starter(
            http,
            server.url,
            name,
            fake_openai,
            input_value=expect.input,
            upload_text=expect.upload,
        )
    assert response.status_code != 500, response.text
    assert response.status_code == expect.status, response.text
    body = response.json()
    if expect.status == 200:
        assert expect.output in output_text(body)
    else:
        assert expect.names in body["detail"], body["detail"]
        assert body["code"]


# -- the internet-bound starters, against loopback fakes ----------------------------------

LOOP = "Research Translation Loop"


async def test_research_translation_loop_runs_the_model_once_per_paper(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI, fake_arxiv: FakeArxiv
) -> None:
    install(flows_dir, LOOP)
    async with (
        live_server(outbound_allowlist="127.0.0.1", arxiv_url=fake_arxiv.url) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        response = await run_starter(http, server.url, LOOP, fake_openai, input_value="agents")
        prompts = [r["messages"][-1]["content"] for r in fake_openai.requests]
        streamed = await run_starter(
            http, server.url, LOOP, fake_openai, input_value="agents", stream=True
        )
    assert response.status_code == 200, response.text
    assert fake_arxiv.requests[0] == {"search_query": "agents", "max_results": "3"}
    assert prompts == [
        f"Title: Paper {i} about agents\nSummary: Summary {i}: we study agents." for i in (1, 2, 3)
    ]
    text = output_text(response.json())
    for i in (1, 2, 3):
        assert f"Echo: Title: Paper {i} about agents" in text
    # Streamed, the model inside the loop streams each iteration's answer.
    events = events_of(streamed.text)
    partial = [
        e
        for e in events
        if e["event"] == "add_message" and e["data"]["properties"]["state"] == "partial"
    ]
    assert len(partial) == 3
    assert events[-1]["event"] == "end"
    assert output_text(events[-1]["data"]["result"]) == text


async def test_a_loop_over_more_items_than_the_bound_is_a_422_naming_the_loop(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI, fake_arxiv: FakeArxiv
) -> None:
    install(flows_dir, LOOP)
    async with (
        live_server(
            outbound_allowlist="127.0.0.1", arxiv_url=fake_arxiv.url, max_loop_iterations=2
        ) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        response = await run_starter(http, server.url, LOOP, fake_openai, input_value="agents")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "loop_limit_exceeded"
    assert "LoopComponent-E7Ur0" in body["detail"]
    assert "3 items" in body["detail"]
    assert fake_openai.requests == []  # no iteration ran


async def test_meeting_summary_transcribes_then_summarises(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI, fake_assemblyai: FakeAssemblyAI
) -> None:
    name = "Meeting Summary"
    install(flows_dir, name)
    async with (
        live_server(
            outbound_allowlist="127.0.0.1",
            assemblyai_url=fake_assemblyai.url,
            assemblyai_poll_interval=0.01,
        ) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        response = await run_starter(
            http,
            server.url,
            name,
            fake_openai,
            input_value="Summarise the meeting",
            tweaks={"AAITranscriber-ms": {"api_key": KEY}},
        )
    assert response.status_code == 200, response.text
    assert fake_assemblyai.started == [{"audio_url": "https://assembly.ai/wildfires.mp3"}]
    sent = fake_openai.requests[0]["messages"][-1]["content"]
    assert "Transcript of https://assembly.ai/wildfires.mp3" in sent


async def test_saas_pricing_agent_queries_the_operators_database(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    name = "SaaS Pricing"
    database = tmp_path / "pricing.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE plans (name TEXT, price INTEGER)")
        conn.executemany("INSERT INTO plans VALUES (?, ?)", [("free", 0), ("pro", 29)])
    install(flows_dir, name)
    query = 'TOOL run_sql_query {"query": "SELECT name, price FROM plans WHERE price > 0"}'
    async with (
        live_server(
            outbound_allowlist="127.0.0.1", sql_database_url=f"sqlite:///{database}"
        ) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        response = await run_starter(http, server.url, name, fake_openai, input_value=query)
        refused = await run_starter(
            http,
            server.url,
            name,
            fake_openai,
            input_value='TOOL run_sql_query {"query": "DELETE FROM plans"}',
        )
    assert response.status_code == 200, response.text
    text = output_text(response.json())
    assert text.startswith("Tool run_sql_query said:")
    assert '"name": "pro"' in text
    assert '"price": 29' in text
    # A write is refused and the model is told why; the table is untouched.
    assert refused.status_code == 200, refused.text
    assert "read-only" in output_text(refused.json())
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM plans").fetchone() == (2,)


async def test_content_aggregator_batches_the_search_results_through_the_model(
    live_server: Any, flows_dir: Path, fake_openai: FakeOpenAI, website: ThreadedServer
) -> None:
    name = "Content Aggregator"
    install(flows_dir, name)
    async with (
        live_server(
            outbound_allowlist="127.0.0.1",
            web_search_url=f"{website.url}/search",
            news_search_url=f"{website.url}/news",
        ) as server,
        httpx.AsyncClient(timeout=60) as http,
    ):
        response = await run_starter(http, server.url, name, fake_openai, input_value="fusion")
    assert response.status_code == 200, response.text
    briefs = [r for r in fake_openai.requests if r["messages"][0]["role"] == "system"]
    assert any("Write one concise, neutral sentence" in r["messages"][0]["content"] for r in briefs)
    assert "Echo: " in output_text(response.json())
