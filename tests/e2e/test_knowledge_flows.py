"""Knowledge bases over HTTP, on both backends: ingest text through one flow, retrieve it
through another (and through Langflow's "Knowledge Retrieval" starter, unmodified), with
the fake provider on loopback embedding both."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.api.authed import auth_settings, authed_app
from tests.conftest import TEST_REDIS_URL, _serve_in_lifespan
from tests.e2e.knowledge import (
    DOCUMENT,
    INGEST,
    KNOWLEDGE_RETRIEVAL,
    RETRIEVE,
    ingest,
    ingest_flow,
    ingest_report,
    output_text,
    retrieve_flow,
    run,
)
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
async def http(backend_settings: Settings, flows_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    for document in (ingest_flow(), retrieve_flow()):
        (flows_dir / f"{document['id']}.json").write_text(json.dumps(document))
    shutil.copy(KNOWLEDGE_RETRIEVAL, flows_dir / "knowledge-retrieval.json")
    # The fake provider listens on loopback, which the guard allows only when listed.
    app = create_app(backend_settings.replace(outbound_allowlist="127.0.0.1"))
    async for client in _serve_in_lifespan(app):
        yield client


async def test_ingested_chunks_are_retrieved_by_meaning(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    report = await ingest(http, fake_openai)
    assert report["kb_name"] == "docs"
    assert (report["rows"], report["chunks_created"], report["skipped"]) == (5, 5, 0)
    assert report["embedding_model"] == "OpenAI/text-embedding-3-small"
    assert report["dimension"] == 512
    [sent] = fake_openai.embedding_requests
    assert sent["model"] == "text-embedding-3-small"
    assert len(sent["input"]) == 5

    answer = output_text(await run(http, fake_openai, RETRIEVE, "what is the cat called"))
    lines = answer.splitlines()
    assert len(lines) == 2  # top_k from the flow
    assert all("Biscuit" in line for line in lines)
    assert fake_openai.embedding_requests[-1]["input"] == ["what is the cat called"]


async def test_the_k_tweak_and_top_k_change_how_many_chunks_come_back(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await ingest(http, fake_openai)
    for tweak, expected in (({"k": 1}, 1), ({"k": 4}, 4), ({"top_k": 3}, 3), ({"k": 50}, 5)):
        answer = output_text(
            await run(http, fake_openai, RETRIEVE, "refunds", {"Knowledge-r": tweak})
        )
        assert len(answer.splitlines()) == expected, (tweak, answer)
    both = await run(http, fake_openai, RETRIEVE, "refunds", {"Knowledge-r": {"k": 1, "top_k": 3}})
    assert len(output_text(both).splitlines()) == 1  # k wins


async def test_ingesting_again_skips_duplicates_without_embedding_them(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await ingest(http, fake_openai)
    again = await ingest(http, fake_openai)
    assert (again["chunks_created"], again["skipped"], again["total_chunks"]) == (0, 5, 5)
    assert len(fake_openai.embedding_requests) == 1  # nothing new was sent to the provider
    allowed = await ingest(http, fake_openai, allow_duplicates=True)
    assert (allowed["chunks_created"], allowed["total_chunks"]) == (5, 10)


async def test_metadata_is_stamped_and_filters_retrieval(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await ingest(http, fake_openai, metadata_json='{"tag": "handbook"}')
    tweaks = {"Knowledge-r": {"k": 5, "metadata_filter": '{"tag": ["other"]}'}}
    assert output_text(await run(http, fake_openai, RETRIEVE, "cat", tweaks)) == ""
    tweaks = {"Knowledge-r": {"k": 5, "metadata_filter": '{"tag": "handbook"}'}}
    assert len(output_text(await run(http, fake_openai, RETRIEVE, "cat", tweaks)).splitlines()) == 5
    bad = await run(
        http, fake_openai, RETRIEVE, "cat", {"Knowledge-r": {"metadata_filter": "{not json"}}
    )
    assert bad.status_code == 422
    assert "metadata_filter is not valid JSON" in bad.json()["detail"]


async def test_the_knowledge_retrieval_starter_flow_runs_unmodified(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await ingest(http, fake_openai)
    starter = json.loads(KNOWLEDGE_RETRIEVAL.read_text())["id"]
    response = await run(
        http,
        fake_openai,
        starter,
        "where does the cat sleep",
        {"Knowledge-Y8gm2": {"knowledge_base": "docs", "k": 1}},
    )
    assert output_text(response) == "Text: Biscuit the cat sleeps on the reception desk."


async def test_unknown_knowledge_base_and_bad_k_are_clear_errors(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    missing = await run(
        http, fake_openai, RETRIEVE, "x", {"Knowledge-r": {"knowledge_base": "nope"}}
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "knowledge_base_not_found"
    assert "knowledge base 'nope' does not exist" in missing.json()["detail"]
    for k in (0, 1001):
        bad = await run(http, fake_openai, RETRIEVE, "x", {"Knowledge-r": {"k": k}})
        assert bad.status_code == 422
        assert "'k' must be from 1 to 1000" in bad.json()["detail"]
    wrong_type = await run(http, fake_openai, RETRIEVE, "x", {"Knowledge-r": {"k": "five"}})
    assert wrong_type.status_code == 422
    bad_name = await run(
        http, fake_openai, INGEST, "x", {"Knowledge-ingest": {"knowledge_base": "../../etc"}}
    )
    assert bad_name.status_code == 422
    assert "is not a knowledge base name" in bad_name.json()["detail"]


async def test_another_embedding_model_cannot_write_into_a_knowledge_base(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await ingest(http, fake_openai)
    response = await run(
        http,
        fake_openai,
        INGEST,
        "new text",
        {"Knowledge-ingest": {"embedding_model": "text-embedding-3-large"}},
    )
    assert response.status_code == 422
    assert (
        "was made with the embedding model OpenAI/text-embedding-3-small"
        in (response.json()["detail"])
    )
    created = await ingest(
        http, fake_openai, knowledge_base="large", embedding_model="OpenAI/text-embedding-3-large"
    )
    assert created["embedding_model"] == "OpenAI/text-embedding-3-large"
    assert fake_openai.embedding_requests[-1]["model"] == "text-embedding-3-large"


async def test_an_unreachable_or_garbage_embedding_provider_is_a_502(
    http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fault = "not_json"
    response = await run(http, fake_openai, INGEST, DOCUMENT)
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert "Knowledge-ingest" in detail
    assert "OpenAI embeddings answered with malformed JSON" in detail
    fake_openai.fault = None
    headers = {
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_API_KEY": "sk-caller",
        "X-LANGFLOW-GLOBAL-VAR-OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    }
    unreachable = await http.post(
        f"/api/v1/run/{INGEST}", json={"input_value": DOCUMENT}, headers=headers
    )
    assert unreachable.status_code == 502
    assert "OpenAI embeddings API unreachable" in unreachable.json()["detail"]


@pytest.fixture(params=["embedded", "postgres"])
def key_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "embedded":
        return {}
    return {
        "database_url": request.getfixturevalue("clean_pg"),
        "redis_url": TEST_REDIS_URL,
        "redis_prefix": request.getfixturevalue("redis_prefix"),
    }


async def test_knowledge_bases_belong_to_the_key_that_ran_the_ingest(
    flows_dir: Path, key_backend: dict[str, Any], fake_openai: FakeOpenAI
) -> None:
    for document in (ingest_flow(), retrieve_flow()):
        (flows_dir / f"{document['id']}.json").write_text(json.dumps(document))
    settings = auth_settings(flows_dir, outbound_allowlist="127.0.0.1", **key_backend)
    async with authed_app(settings) as app:
        scopes = ["read", "execute", "write"]
        a = {"x-api-key": (await app.create_key(name="a", scopes=scopes))["api_key"]}
        b = {"x-api-key": (await app.create_key(name="b", scopes=scopes))["api_key"]}
        http = app.client
        report = ingest_report(await run(http, fake_openai, INGEST, DOCUMENT, headers=a))
        assert report["chunks_created"] == 5
        mine = await run(http, fake_openai, RETRIEVE, "refunds", headers=a)
        assert output_text(mine).startswith("[Refunds are issued")
        theirs = await run(http, fake_openai, RETRIEVE, "refunds", headers=b)
        assert theirs.status_code == 404
        assert "knowledge base 'docs' does not exist" in theirs.json()["detail"]
        # B's own "docs" is another knowledge base: A's chunks are not in it.
        await run(http, fake_openai, INGEST, "Only B knows this line.", headers=b)
        assert output_text(await run(http, fake_openai, RETRIEVE, "refunds", headers=b)) == (
            "[Only B knows this line.]"
        )
        assert (
            len(output_text(await run(http, fake_openai, RETRIEVE, "cat", headers=a)).splitlines())
            == 2
        )
