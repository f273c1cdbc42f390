"""The OpenAI Embeddings API (``POST {base}/embeddings``), and every server that speaks it.

OpenAI, Ollama, vLLM, LM Studio...: only the base URL differs. Inputs are sent
in batches of ``batch_size`` (Langflow's ``chunk_size``) and the vectors come
back in input order whatever order the server lists them in. An answer that is
not one finite vector per input, all of one dimension, is a 502 naming the
provider, like any other malformed answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from flowserve.errors import UpstreamError
from flowserve.providers.http1 import Pool
from flowserve.providers.transport import Transport

DEFAULT_BATCH = 1000
# OpenAI accepts at most 2048 inputs per request; so do most compatible servers.
MAX_BATCH = 2048


class EmbeddingsClient:
    def __init__(
        self,
        http: Pool,
        *,
        model: str,
        api_key: str | None,
        base_url: str,
        provider: str = "OpenAI",
        dimensions: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        timeout: float = 60.0,
        max_retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.provider = provider
        self.model = model
        self.dimensions = dimensions
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.url = base_url.rstrip("/") + "/embeddings"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.transport = Transport(
            http,
            provider,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            secrets=(api_key or "",),
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order (no request for an empty list)."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            body: dict[str, Any] = {
                "model": self.model,
                "input": batch,
                "encoding_format": "float",
            }
            if self.dimensions:
                body["dimensions"] = self.dimensions
            answer = await self.transport.post_json(self.url, self.headers, body)
            vectors.extend(self.transport.parse(_Vectors(len(batch)), answer))
        if vectors and len({len(v) for v in vectors}) != 1:
            raise UpstreamError(f"{self.provider} answered with vectors of different dimensions")
        return vectors


class _Vectors:
    """Reads one batch's answer: ``expected`` vectors, put back in input order."""

    def __init__(self, expected: int) -> None:
        self.expected = expected

    def __call__(self, payload: Any) -> list[list[float]]:
        return _vectors(payload, self.expected)


def _vectors(payload: Any, expected: int) -> list[list[float]]:
    items = payload["data"]
    if not isinstance(items, list) or len(items) != expected:
        count = len(items) if isinstance(items, list) else "no"
        raise ValueError(f"{count} embeddings for {expected} inputs")
    ordered: list[list[float] | None] = [None] * expected
    for position, item in enumerate(items):
        index = item.get("index", position)
        if not isinstance(index, int) or not 0 <= index < expected or ordered[index] is not None:
            raise ValueError(f"embedding index {index!r} is out of place")
        ordered[index] = _vector(item["embedding"])
    return [v for v in ordered if v is not None]


def _vector(raw: Any) -> list[float]:
    if not isinstance(raw, list) or not raw:
        raise TypeError("an embedding is not a non-empty list of numbers")
    vector: list[float] = []
    for x in raw:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise TypeError(f"an embedding holds {x!r}, not a finite number")
        vector.append(float(x))
    return vector
