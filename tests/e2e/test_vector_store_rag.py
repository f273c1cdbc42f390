"""Langflow's "Vector Store RAG" starter over HTTP on PostgreSQL+pgvector and embedded:
a document goes into a knowledge base, a question retrieves its chunks, and the prompt
the (fake) model receives holds them; the k tweak decides how many reach it."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import FIXTURES, _serve_in_lifespan
from tests.e2e.knowledge import (
    DOCUMENT,
    FILE_INGEST,
    file_ingest_flow,
    ingest,
    ingest_flow,
    ingest_report,
    output_text,
    run,
)
from tests.fakes.openai_server import FakeOpenAI

VECTOR_STORE_RAG = FIXTURES / "starter-projects" / "Vector Store RAG.json"
RAG = json.loads(VECTOR_STORE_RAG.read_text())["id"]
MODEL = {"model": [{"name": "gpt-4o-mini", "provider": "OpenAI"}]}
CAT_NAME = "Text: The office cat is called Biscuit and likes tuna."
CAT_BED = "Text: Biscuit the cat sleeps on the reception desk."


@pytest.fixture
async def http(backend_settings: Settings, flows_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    (flows_dir / "ingest.json").write_text(json.dumps(ingest_flow()))
    (flows_dir / "file-ingest.json").write_text(json.dumps(file_ingest_flow()))
    shutil.copy(VECTOR_STORE_RAG, flows_dir / "vector-store-rag.json")
    app = create_app(
        backend_settings.replace(
            outbound_allowlist="127.0.0.1", files_dir=str(flows_dir.parent / "uploads")
        )
    )
    async for client in _serve_in_lifespan(app):
        yield client


def prompt_sent(fake: FakeOpenAI) -> str:
    """The user turn of the last chat request the model received."""
    messages = fake.requests[-1]["messages"]
    return str(next(m["content"] for m in reversed(messages) if m["role"] == "user"))


async def test_the_answer_prompt_holds_the_retrieved_chunks_and_k_sets_how_many(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await ingest(http, fake_openai)
    question = "what is the cat called"

    one = await run(
        http,
        fake_openai,
        RAG,
        question,
        {"Knowledge-vLJOb": {"knowledge_base": "docs", "k": 1}, "Agent-F0Dv0": MODEL},
    )
    answer = output_text(one)
    prompt = prompt_sent(fake_openai)
    assert prompt.startswith(CAT_NAME + "\n\n---\n\nGiven the context above")
    assert prompt.endswith(f"Question: {question}\n\nAnswer: ")
    assert prompt.count("Text: ") == 1
    assert CAT_NAME in answer  # the fake model echoes its prompt
    # The question was embedded with the knowledge base's model, once.
    assert fake_openai.embedding_requests[-1] == {
        "model": "text-embedding-3-small",
        "input": [question],
        "encoding_format": "float",
    }

    three = await run(
        http,
        fake_openai,
        RAG,
        question,
        {"Knowledge-vLJOb": {"knowledge_base": "docs", "k": 3}, "Agent-F0Dv0": MODEL},
    )
    output_text(three)
    prompt = prompt_sent(fake_openai)
    assert prompt.count("Text: ") == 3
    context = prompt.split("\n\n---\n\n")[0].splitlines()
    assert context[:2] == [CAT_NAME, CAT_BED]  # best first

    # Without a k tweak the flow's own top_k (5) applies: every chunk of the document.
    default = await run(
        http,
        fake_openai,
        RAG,
        question,
        {"Knowledge-vLJOb": {"knowledge_base": "docs"}, "Agent-F0Dv0": MODEL},
    )
    output_text(default)
    assert prompt_sent(fake_openai).count("Text: ") == 5


async def test_an_uploaded_file_is_ingested_and_answers_questions(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    uploaded = await http.post(
        "/api/v2/files", files={"file": ("handbook.txt", DOCUMENT.encode(), "text/plain")}
    )
    assert uploaded.status_code == 201, uploaded.text
    path = uploaded.json()["path"]
    report = ingest_report(
        await run(http, fake_openai, FILE_INGEST, "", {"File-f": {"path": [path]}})
    )
    assert (report["rows"], report["chunks_created"]) == (5, 5)

    question = "where does the cat sleep"
    for k in (1, 2):
        tweaks = {"Knowledge-vLJOb": {"knowledge_base": "docs", "k": k}, "Agent-F0Dv0": MODEL}
        answer = output_text(await run(http, fake_openai, RAG, question, tweaks))
        prompt = prompt_sent(fake_openai)
        assert prompt.count("Text: ") == k
        assert prompt.startswith(CAT_BED)  # the best chunk first
        assert CAT_BED in answer
    assert CAT_NAME in prompt  # the second best, with k=2
