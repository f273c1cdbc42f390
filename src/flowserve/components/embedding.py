"""Embedding models: which one a node uses, one call to it, and the components that pick one.

``resolve_embedding`` turns a model choice (a name, ``provider/name``, or
Langflow's ModelInput list ``[{"name": ..., "provider": ...}]``) plus the key and
base URL fallbacks of ``llm.endpoint_and_key`` into ``EmbeddingSettings``, which
is also the value of the ``embeddings`` output of Langflow's ``OpenAIEmbeddings``
and ``EmbeddingModel`` components. Only providers that speak the OpenAI
Embeddings API can embed (OpenAI, Ollama, OpenRouter, and any compatible server
under OpenAI with a base URL). A base URL the caller chose passes the outbound
SSRF guard first, as for chat models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from flowserve.components.llm import (
    DEFAULT_RETRIES,
    PROVIDERS,
    Provider,
    as_number,
    as_retries,
    endpoint_and_key,
    parse_model_choice,
    provider_session,
)
from flowserve.components.outbound import Allowlist, check_url
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.errors import Invalid
from flowserve.providers import EmbeddingsClient
from flowserve.providers.embeddings import DEFAULT_BATCH
from flowserve.store.base import EmbeddingModelRef

DEFAULT_EMBEDDING_TIMEOUT = 60.0
OPENAI_EMBEDDING_MODELS = (
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
)


@dataclass(frozen=True, slots=True)
class EmbeddingSettings:
    provider: Provider
    model: str
    api_key: str | None
    base_url: str
    dimensions: int | None = None
    batch_size: int = DEFAULT_BATCH
    timeout: float = DEFAULT_EMBEDDING_TIMEOUT
    max_retries: int = DEFAULT_RETRIES
    caller_chosen_url: bool = False

    @property
    def ref(self) -> EmbeddingModelRef:
        return EmbeddingModelRef(self.provider.name, self.model)


def parse_embedding_choice(value: Any) -> tuple[str, str | None]:
    """``(model, provider or None)``; ``"provider/model"`` names both."""
    model, provider = parse_model_choice(value)
    if provider is None and "/" in model:
        head, _, tail = model.partition("/")
        if head.lower() in PROVIDERS:
            return tail.strip(), PROVIDERS[head.lower()].name
    return model, provider


def embedding_provider(name: str) -> Provider:
    provider = PROVIDERS.get(name.lower())
    if provider is None or provider.api != "openai":
        embedders = ", ".join(p.name for p in PROVIDERS.values() if p.api == "openai")
        raise Invalid(
            f"embedding provider '{name}' is not supported (supported: {embedders}; "
            "other OpenAI-compatible servers work as OpenAI with a base URL)"
        )
    return provider


def resolve_embedding(
    component: Component,
    ctx: NodeContext,
    params: Mapping[str, Any],
    choice: Any,
    *,
    key_field: str = "api_key",
) -> EmbeddingSettings:
    """The embedding model ``choice`` names, with this node's key, base URL and limits."""
    if isinstance(choice, EmbeddingSettings):
        return choice
    model, provider_name = parse_embedding_choice(choice)
    if not model:
        raise Invalid(
            "an embedding model is required: set the 'model' field, e.g. with the tweak "
            f'{{"{ctx.node_id}": {{"model": "text-embedding-3-small"}}}}'
        )
    override = str(params.get("provider") or "").strip()
    provider = embedding_provider(override or provider_name or "OpenAI")
    base_url, api_key, chosen = endpoint_and_key(
        component, ctx, params, provider, key_field=key_field
    )
    if api_key is None and provider.key_required and base_url == provider.base_url:
        raise Invalid(
            f"no API key for {provider.name} embeddings: set the '{key_field}' field or "
            f"tweak, or the global variable {provider.key_variable}"
        )
    return EmbeddingSettings(
        provider=provider,
        model=model,
        api_key=api_key,
        base_url=base_url,
        dimensions=as_number(params.get("dimensions"), int) or None,
        batch_size=as_number(params.get("chunk_size"), int) or DEFAULT_BATCH,
        timeout=as_number(params.get("request_timeout"), float) or DEFAULT_EMBEDDING_TIMEOUT,
        max_retries=as_retries(params.get("max_retries")),
        caller_chosen_url=chosen,
    )


async def embed(
    ctx: NodeContext, settings: EmbeddingSettings, texts: Sequence[str]
) -> list[tuple[float, ...]]:
    """One vector per text (an empty list costs no call)."""
    if not texts:
        return []
    if settings.caller_chosen_url:
        await check_url(settings.base_url, Allowlist.of(ctx))
    async with provider_session(ctx) as http:
        client = EmbeddingsClient(
            http,
            model=settings.model,
            api_key=settings.api_key,
            base_url=settings.base_url,
            provider=f"{settings.provider.name} embeddings",
            dimensions=settings.dimensions,
            batch_size=settings.batch_size,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )
        return [tuple(v) for v in await client.embed(list(texts))]


class EmbeddingModel(Component):
    """Langflow's unified embedding model picker: its output feeds vector stores."""

    type_name = "EmbeddingModel"
    display_name = "Embedding Model"
    description = "Generate embeddings using a specified provider."
    category = "models"
    icon = "binary"
    key_field: ClassVar[str] = "api_key"
    inputs: ClassVar[tuple[Input, ...]] = (
        Input("model", "model", "text-embedding-3-small", "Embedding Model", required=True),
        Input("model_name", "str", "", "Model Name Override", advanced=True),
        Input("provider", "str", "", "Provider Override", advanced=True),
        Input("api_key", "secret", "", "API Key", advanced=True),
        Input("api_base", "str", "", "API Base URL", advanced=True),
        Input("dimensions", "int", None, "Dimensions", advanced=True),
        Input("chunk_size", "int", DEFAULT_BATCH, "Chunk Size", advanced=True),
        Input("request_timeout", "float", None, "Request Timeout", advanced=True),
        Input("max_retries", "int", 3, "Max Retries", advanced=True),
    )
    outputs = (Output("embeddings", ("Embeddings",), "Embedding Model", "build_embeddings"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        choice = params.get("model_name") or params.get("model")
        settings = resolve_embedding(self, ctx, params, choice, key_field=self.key_field)
        return {"embeddings": settings}


class OpenAIEmbeddings(EmbeddingModel):
    type_name = "OpenAIEmbeddings"
    display_name = "OpenAI Embeddings"
    description = "Generate embeddings using OpenAI models."
    icon = "OpenAI"
    key_field = "openai_api_key"
    inputs: ClassVar[tuple[Input, ...]] = (
        Input(
            "model",
            "str",
            "text-embedding-3-small",
            "Model",
            options=OPENAI_EMBEDDING_MODELS,
        ),
        Input("openai_api_key", "secret", "", "OpenAI API Key"),
        Input("openai_api_base", "str", "", "OpenAI API Base", advanced=True),
        Input("dimensions", "int", None, "Dimensions", advanced=True),
        Input("chunk_size", "int", DEFAULT_BATCH, "Chunk Size", advanced=True),
        Input("request_timeout", "float", None, "Request Timeout", advanced=True),
        Input("max_retries", "int", 3, "Max Retries", advanced=True),
    )
