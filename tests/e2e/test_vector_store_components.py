"""Langflow's generic vector stores (pgvector, Chroma, Local DB) over HTTP on both
backends: they ingest into and search the server's own store, whatever connection a
flow or a tweak names; AstraDB loads and answers a clear 422."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.conftest import _serve_in_lifespan
from tests.e2e.knowledge import DOCUMENT, output_text, run
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import edge, flow, node

PG = "44444444-4444-4444-8444-444444444444"
CHROMA = "55555555-5555-4555-8555-555555555555"
LOCAL = "66666666-6666-4666-8666-666666666666"
ASTRA = "77777777-7777-4777-8777-777777777777"


def store_flow(flow_id: str, store_type: str, **fields: Any) -> dict[str, Any]:
    """The document split into lines into the store, and the chat input as its query."""
    return flow(
        flow_id,
        [
            node("TextInput-doc", "TextInput", input_value=DOCUMENT),
            node("SplitText-s", "SplitText", chunk_size=60, chunk_overlap=0, separator="\n"),
            node("ChatInput-q", "ChatInput"),
            node("OpenAIEmbeddings-e", "OpenAIEmbeddings", model="text-embedding-3-small"),
            node("Store-1", store_type, collection_name="handbook", **fields),
            node("parser-p", "parser", mode="Parser", pattern="[{text}]", sep="\n"),
            node("ChatOutput-out", "ChatOutput"),
        ],
        [
            edge("TextInput-doc", "text", "SplitText-s", "data_inputs"),
            edge("SplitText-s", "dataframe", "Store-1", "ingest_data"),
            edge("ChatInput-q", "message", "Store-1", "search_query"),
            edge("OpenAIEmbeddings-e", "embeddings", "Store-1", "embedding"),
            edge("Store-1", "dataframe", "parser-p", "input_data"),
            edge("parser-p", "parsed_text", "ChatOutput-out", "input_value"),
        ],
    )


def astra_flow() -> dict[str, Any]:
    return flow(
        ASTRA,
        [
            node("ChatInput-q", "ChatInput"),
            node("AstraDB-a", "AstraDB", collection_name="x", token="ASTRA_DB_APPLICATION_TOKEN"),
            node("parser-p", "parser", mode="Parser", pattern="{text}"),
            node("ChatOutput-out", "ChatOutput"),
        ],
        [
            edge("ChatInput-q", "message", "AstraDB-a", "search_query"),
            edge("AstraDB-a", "dataframe", "parser-p", "input_data"),
            edge("parser-p", "parsed_text", "ChatOutput-out", "input_value"),
        ],
    )


@pytest.fixture
async def http(
    backend_settings: Settings, flows_dir: Path, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    documents = [
        store_flow(PG, "pgvector", number_of_results=2),
        store_flow(CHROMA, "Chroma", number_of_results=2),
        store_flow(LOCAL, "LocalDB", mode="Ingest", number_of_results=2),
        astra_flow(),
    ]
    for document in documents:
        (flows_dir / f"{document['id']}.json").write_text(json.dumps(document))
    app = create_app(backend_settings.replace(outbound_allowlist="127.0.0.1"))
    async for client in _serve_in_lifespan(app):
        yield client


def lines(response: httpx.Response) -> list[str]:
    return output_text(response).splitlines()


async def test_pgvector_stores_and_searches_the_servers_store_whatever_url_is_given(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    elsewhere = {"pg_server_url": "postgresql://attacker@203.0.113.9:5432/steal"}
    found = lines(
        await run(http, fake_openai, PG, "what is the cat called", {"Store-1": elsewhere})
    )
    assert found == [
        "[The office cat is called Biscuit and likes tuna.]",
        "[Biscuit the cat sleeps on the reception desk.]",
    ]
    more = await run(http, fake_openai, PG, "cat", {"Store-1": {"number_of_results": 3}})
    assert len(lines(more)) == 3
    # pgvector adds every row, as Langflow's does: the same lines are now stored twice.
    twice = await run(http, fake_openai, PG, "refunds", {"Store-1": {"number_of_results": 2}})
    assert lines(twice) == ["[Refunds are issued to the original payment card.]"] * 2


async def test_chroma_skips_duplicates_and_never_writes_to_its_persist_directory(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    target = tmp_path / "chroma-here"
    tweaks = {"Store-1": {"persist_directory": str(target), "chroma_server_host": "10.0.0.1"}}
    for _ in range(2):
        found = lines(await run(http, fake_openai, CHROMA, "refunds", tweaks))
        assert found[0] == "[Refunds are issued to the original payment card.]"
        assert "[Refunds are issued to the original payment card.]" not in found[1:]
    assert not target.exists()
    allowed = {"Store-1": {"allow_duplicates": True}}
    await run(http, fake_openai, CHROMA, "refunds", allowed)
    twice = lines(await run(http, fake_openai, CHROMA, "refunds", allowed))
    assert twice == ["[Refunds are issued to the original payment card.]"] * 2


async def test_local_db_ingests_then_retrieves_by_mode(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    assert output_text(await run(http, fake_openai, LOCAL, "cat")) == ""  # ingest mode
    retrieve = {"Store-1": {"mode": "Retrieve", "existing_collections": "handbook"}}
    found = lines(await run(http, fake_openai, LOCAL, "is parking free", retrieve))
    assert found[0] == "[Parking is free for visitors on weekends.]"
    assert len(found) == 2


async def test_a_store_needs_an_embedding_and_keeps_its_model(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await run(http, fake_openai, PG, "cat")
    other = {"OpenAIEmbeddings-e": {"model": "text-embedding-3-large"}}
    response = await run(http, fake_openai, CHROMA, "cat", other)  # same collection name
    assert response.status_code == 422
    assert (
        "made with the embedding model OpenAI/text-embedding-3-small" in (response.json()["detail"])
    )


async def test_a_caller_chosen_embeddings_url_passes_the_outbound_guard(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    tweaks = {"OpenAIEmbeddings-e": {"openai_api_base": "http://169.254.169.254/v1"}}
    response = await run(http, fake_openai, PG, "cat", tweaks)
    assert response.status_code == 403
    assert response.json()["code"] == "blocked_url"
    assert fake_openai.embedding_requests == []


async def test_astra_db_flows_load_and_running_one_is_a_clear_422(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    assert (await http.get(f"/api/v1/flows/{ASTRA}")).status_code == 200
    response = await run(http, fake_openai, ASTRA, "hello")
    assert response.status_code == 422
    assert (
        "AstraDB is not supported by flowserve; use pgvector or Knowledge"
        in (response.json()["detail"])
    )
