"""The OpenAI-compatible embeddings client against the fake server: vectors in input
order, batching, dimensions, and a clean 502 for every answer that is not vectors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowserve.errors import UpstreamError
from flowserve.providers import EmbeddingsClient, Pool, new_session
from tests.fakes.garbage import Fault
from tests.fakes.openai_server import FakeOpenAI, embed_text


@pytest.fixture
async def http() -> AsyncIterator[Pool]:
    async with new_session() as session:
        yield session


def _client(http: Pool, base_url: str, **kwargs: Any) -> EmbeddingsClient:
    options: dict[str, Any] = {
        "model": "text-embedding-3-small",
        "api_key": "sk-embed-secret",
        "base_url": base_url,
        "backoff": 0.01,
        **kwargs,
    }
    return EmbeddingsClient(http, **options)


async def test_vectors_come_back_in_input_order(http: Pool, fake_openai: FakeOpenAI) -> None:
    texts = ["the cat sat", "a dog ran", "the cat sat"]
    vectors = await _client(http, fake_openai.base_url).embed(texts)
    assert vectors == [pytest.approx(embed_text(t)) for t in texts]
    [sent] = fake_openai.embedding_requests
    assert sent == {
        "model": "text-embedding-3-small",
        "input": texts,
        "encoding_format": "float",
    }
    assert fake_openai.embedding_headers[0]["authorization"] == "Bearer sk-embed-secret"


async def test_inputs_are_sent_in_batches(http: Pool, fake_openai: FakeOpenAI) -> None:
    texts = [f"text number {i}" for i in range(7)]
    vectors = await _client(http, fake_openai.base_url, batch_size=3).embed(texts)
    assert len(vectors) == 7
    assert [len(r["input"]) for r in fake_openai.embedding_requests] == [3, 3, 1]
    assert vectors[6] == pytest.approx(embed_text("text number 6"))


async def test_dimensions_are_asked_for(http: Pool, fake_openai: FakeOpenAI) -> None:
    [vector] = await _client(http, fake_openai.base_url, dimensions=16).embed(["short"])
    assert len(vector) == 16
    assert fake_openai.embedding_requests[0]["dimensions"] == 16


async def test_no_texts_make_no_request(http: Pool, fake_openai: FakeOpenAI) -> None:
    assert await _client(http, fake_openai.base_url).embed([]) == []
    assert fake_openai.embedding_requests == []


async def test_answers_listed_out_of_order_are_put_back_in_order(
    http: Pool, fake_openai: FakeOpenAI
) -> None:
    fake_openai.embedding_answer = {
        "data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}]
    }
    assert await _client(http, fake_openai.base_url).embed(["a", "b"]) == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"data": [{"index": 0, "embedding": [1.0]}]}, "1 embeddings for 2 inputs"),
        ({"object": "list"}, "unexpected shape"),
        ({"data": [{"embedding": [1.0, "x"]}, {"embedding": [1.0, 2.0]}]}, "not a finite"),
        ({"data": [{"embedding": []}, {"embedding": [1.0]}]}, "non-empty list"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}, "place"),
        ({"data": [{"embedding": [1.0]}, {"embedding": [1.0, 2.0]}]}, "different dimensions"),
        ({"data": "nope"}, "unexpected shape"),
    ],
)
async def test_answers_that_are_not_vectors_are_a_502(
    http: Pool, fake_openai: FakeOpenAI, answer: Any, reason: str
) -> None:
    fake_openai.embedding_answer = answer
    with pytest.raises(UpstreamError, match=reason) as caught:
        await _client(http, fake_openai.base_url, provider="OpenAI embeddings").embed(["a", "b"])
    assert caught.value.status == 502
    assert caught.value.detail.startswith("OpenAI embeddings")


@pytest.mark.parametrize("fault", ["not_json", "bad_utf8", "truncated", "wrong_shape"])
async def test_garbage_answers_are_a_502(http: Pool, fake_openai: FakeOpenAI, fault: Fault) -> None:
    fake_openai.fault = fault
    with pytest.raises(UpstreamError) as caught:
        await _client(http, fake_openai.base_url, max_retries=0).embed(["a"])
    assert caught.value.status == 502
    assert "sk-embed-secret" not in caught.value.detail


async def test_provider_errors_are_a_502_without_the_key(
    http: Pool, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_statuses = [400]
    with pytest.raises(UpstreamError, match=r"HTTP 400.*injected failure 400"):
        await _client(http, fake_openai.base_url).embed(["a"])


async def test_server_errors_are_retried(http: Pool, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_statuses = [503, 429]
    [vector] = await _client(http, fake_openai.base_url, max_retries=2).embed(["retry me"])
    assert vector == pytest.approx(embed_text("retry me"))
    assert len(fake_openai.embedding_requests) == 3


async def test_timeout_is_a_502(http: Pool, fake_openai: FakeOpenAI) -> None:
    fake_openai.latency = 1.0
    client = _client(http, fake_openai.base_url, timeout=0.2, max_retries=0)
    with pytest.raises(UpstreamError, match=r"timed out after 0\.2s"):
        await client.embed(["slow"])


async def test_unreachable_server_is_a_502(http: Pool) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _client(http, f"http://127.0.0.1:{port}/v1", provider="OpenAI embeddings")
    with pytest.raises(UpstreamError, match="OpenAI embeddings API unreachable"):
        await client.embed(["x"])
