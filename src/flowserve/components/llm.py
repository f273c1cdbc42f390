"""Which provider and model a node uses, and one call to it (with streaming).

Langflow stores the model choice in several shapes (a ModelInput list like
``[{"name": "gpt-4o-mini", "provider": "OpenAI"}]``, a list of names, one
name, or the older per-provider components' ``model_name``). ``resolve_model``
turns all of them, plus the key and base URL fallbacks, into one
``ModelSettings``; ``generate`` makes a call, streaming tokens to the run's
event sink when the run streams.

Key fallback: the ``api_key`` field or tweak (a global variable when the field
is ``load_from_db``), then the provider's variable (``OPENAI_API_KEY``...) --
the latter only when the request goes to the provider's configured endpoint.
Base URL: the node's base URL field or tweak, then the provider's variable
(``OPENAI_BASE_URL``...), then the provider's public endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from flowserve.components.outbound import Allowlist, check_url
from flowserve.engine.component import Component, NodeContext
from flowserve.engine.types import Message, TokenUsage
from flowserve.errors import Invalid
from flowserve.providers import (
    ANTHROPIC_BASE_URL,
    OPENAI_BASE_URL,
    AnthropicClient,
    ChatClient,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    OpenAIClient,
    Pool,
    ToolSpec,
    Usage,
    new_session,
)


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    api: str  # "openai" or "anthropic": which wire protocol
    base_url: str
    key_variable: str
    base_url_variable: str
    key_required: bool = True


PROVIDERS: dict[str, Provider] = {
    p.name.lower(): p
    for p in (
        Provider("OpenAI", "openai", OPENAI_BASE_URL, "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        Provider(
            "Anthropic", "anthropic", ANTHROPIC_BASE_URL, "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"
        ),
        Provider(
            "Ollama",
            "openai",
            "http://localhost:11434/v1",
            "OLLAMA_API_KEY",
            "OLLAMA_BASE_URL",
            key_required=False,
        ),
        Provider(
            "Groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "GROQ_BASE_URL"
        ),
        Provider(
            "OpenRouter",
            "openai",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
            "OPENROUTER_BASE_URL",
        ),
    )
}

# Fields that hold a base URL, per component family (the first set one wins).
BASE_URL_FIELDS = (
    "base_url",
    "openai_api_base",
    "anthropic_api_url",
    "ollama_base_url",
    "api_base",
)

DEFAULT_TIMEOUT = 120.0
_N = TypeVar("_N", int, float)
DEFAULT_RETRIES = 2


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """A resolved model: also the value of a model component's ``model_output``."""

    provider: Provider
    model: str
    api_key: str | None
    base_url: str
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_RETRIES
    # The run's caller (a tweak or request header), not the flow or the operator, chose
    # base_url: it must pass the outbound SSRF guard like any caller-chosen URL.
    caller_chosen_url: bool = False

    def client(self, http: Pool) -> ChatClient:
        common: dict[str, Any] = {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "provider": self.provider.name,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }
        if self.provider.api == "anthropic":
            return AnthropicClient(http, **common)
        return OpenAIClient(http, **common)

    def request(
        self,
        messages: list[ChatMessage],
        tools: tuple[ToolSpec, ...] = (),
        *,
        json_mode: bool = False,
    ) -> ChatRequest:
        return ChatRequest(
            model=self.model,
            messages=tuple(messages),
            tools=tools,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            json_mode=json_mode,
        )


def parse_model_choice(value: Any) -> tuple[str, str | None]:
    """``(model name, provider or None)`` from any shape Langflow stores; "" when unset."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        name = value.get("name") or value.get("model") or value.get("model_name") or ""
        provider = value.get("provider") or value.get("category")
        return str(name).strip(), str(provider) if provider else None
    if isinstance(value, str):
        return value.strip(), None
    return "", None


def infer_provider(model: str) -> str:
    return "Anthropic" if model.lower().startswith("claude") else "OpenAI"


def secret_param(
    component: Component, ctx: NodeContext, params: Mapping[str, Any], name: str
) -> str | None:
    """A secret field's value; a named global variable that is not set is a 422."""
    value = params.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    stored = component.node.fields.get(name)
    if (
        stored is not None
        and stored.load_from_db
        and isinstance(stored.value, str)
        and stored.value
        and value is None
    ):
        raise Invalid(
            f"the global variable '{stored.value}' used by field '{name}' is not "
            "set: define it in the environment or send an "
            f"X-LANGFLOW-GLOBAL-VAR-{stored.value} header"
        )
    return None


def resolve_model(
    component: Component,
    ctx: NodeContext,
    params: Mapping[str, Any],
    *,
    provider_name: str | None = None,
) -> ModelSettings:
    chosen = params.get("model")
    if isinstance(chosen, ModelSettings):
        return chosen  # a model component connected to this node's model input
    model, provider_from_choice = parse_model_choice(chosen)
    if not model:
        model, _ = parse_model_choice(params.get("model_name"))
    if not model:
        raise Invalid(
            "A model selection is required: set the 'model' field, e.g. with the tweak "
            f'{{"{ctx.node_id}": {{"model": "gpt-4o-mini"}}}}'
        )
    name = (
        provider_name
        or provider_from_choice
        or str(params.get("provider") or "")
        or infer_provider(model)
    )
    provider = PROVIDERS.get(name.lower())
    if provider is None:
        supported = ", ".join(p.name for p in PROVIDERS.values())
        raise Invalid(
            f"model provider '{name}' is not supported (supported: {supported}; "
            "other OpenAI-compatible servers work as OpenAI with a base URL)"
        )
    base_url, api_key, caller_chosen_url = endpoint_and_key(component, ctx, params, provider)
    if api_key is None and provider.key_required and _same_endpoint(base_url, provider.base_url):
        raise Invalid(
            f"no API key for {provider.name}: set the 'api_key' field or tweak, or "
            f"the global variable {provider.key_variable}"
        )
    return ModelSettings(
        provider=provider,
        model=model,
        api_key=api_key,
        base_url=base_url,
        temperature=as_number(params.get("temperature"), float),
        max_tokens=as_number(params.get("max_tokens"), int) or None,
        timeout=as_number(params.get("timeout"), float) or DEFAULT_TIMEOUT,
        max_retries=as_retries(params.get("max_retries")),
        caller_chosen_url=caller_chosen_url,
    )


# Operator-only variables (the process environment, without request headers), when
# the runner provides them; otherwise the run's variables are all trusted alike.
ENVIRONMENT_SERVICE = "environment"


def endpoint_and_key(
    component: Component,
    ctx: NodeContext,
    params: Mapping[str, Any],
    provider: Provider,
    *,
    key_field: str = "api_key",
) -> tuple[str, str | None, bool]:
    """The base URL and key of a call, and whether the request chose that URL. A
    secret of the server (a key from its environment) goes only to an endpoint the
    request did not choose: the provider's configured one, or a base URL stored in
    the flow. Otherwise a caller could tweak the base URL to their own server and
    collect the key."""
    variables = ctx.run.variables
    environment = ctx.run.services.get(ENVIRONMENT_SERVICE)
    operator: Mapping[str, str] = environment if isinstance(environment, Mapping) else variables
    configured = variables.get(provider.base_url_variable) or provider.base_url
    base_url = _first_text(params, BASE_URL_FIELDS) or configured
    request_chosen = _tweaked(component, params, BASE_URL_FIELDS) or (
        base_url == configured
        and variables.get(provider.base_url_variable) != operator.get(provider.base_url_variable)
    )
    if provider.name == "Ollama" and not base_url.rstrip("/").endswith("/v1"):
        base_url = base_url.rstrip("/") + "/v1"
    api_key = secret_param(component, ctx, params, key_field)
    if api_key is None:
        api_key = variables.get(provider.key_variable) or None
    if (
        api_key is not None
        and request_chosen
        and api_key in _server_secrets(component, operator, provider, key_field)
    ):
        api_key = None
    return base_url, api_key, request_chosen


def _tweaked(component: Component, params: Mapping[str, Any], names: tuple[str, ...]) -> bool:
    """Whether a run set one of ``names`` to something other than the flow file's value."""
    for name in names:
        value = params.get(name)
        stored = component.node.fields.get(name)
        if isinstance(value, str) and value.strip() and (stored is None or stored.value != value):
            return True
    return False


def _server_secrets(
    component: Component, operator: Mapping[str, str], provider: Provider, key_field: str
) -> set[str]:
    secrets = {operator.get(provider.key_variable) or ""}
    stored = component.node.fields.get(key_field)
    if stored is not None and stored.load_from_db and isinstance(stored.value, str):
        secrets.add(operator.get(stored.value) or "")
    return secrets - {""}


def _same_endpoint(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _first_text(params: Mapping[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def as_number(value: Any, kind: type[_N]) -> _N | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def as_retries(value: Any) -> int:
    number = as_number(value, int)
    return DEFAULT_RETRIES if number is None else max(0, min(number, 10))


def to_usage(usage: Usage | None) -> TokenUsage | None:
    if usage is None:
        return None
    return TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )


@dataclass(slots=True)
class Generation:
    response: ChatResponse
    # The id of the AI message whose tokens were streamed ("" when nothing streamed).
    message_id: str


# The services key of the shared provider session (``providers.new_session``).
PROVIDER_SESSION = "provider_http"


@asynccontextmanager
async def provider_session(ctx: NodeContext) -> AsyncIterator[Pool]:
    """The server's shared provider session, or a short-lived one (embedded runs)."""
    shared = ctx.run.services.get(PROVIDER_SESSION)
    if isinstance(shared, Pool) and not shared.closed:
        yield shared
        return
    async with new_session() as session:
        yield session


async def generate(
    ctx: NodeContext, settings: ModelSettings, request: ChatRequest, *, stream: bool
) -> Generation:
    """One model call. When streaming, text chunks become Langflow ``token`` events of
    one AI message, announced by an ``add_message`` in state "partial" before the first."""
    if settings.caller_chosen_url:
        # Else a caller could point the model call at the private network (cloud
        # metadata, admin ports) and read the answer back in the error detail.
        await check_url(settings.base_url, Allowlist.of(ctx))
    async with provider_session(ctx) as http:
        client = settings.client(http)
        if not stream:
            response = await client.complete(request)
            ctx.run.add_usage(to_usage(response.usage))
            return Generation(response, "")
        partial: Message | None = None
        final: ChatResponse | None = None
        async with aclosing(client.stream(request)) as chunks:
            async for chunk in chunks:
                if chunk.response is not None:
                    final = chunk.response
                    continue
                if partial is None:
                    partial = ctx.new_message(
                        "", sender="Machine", sender_name="AI", source_field=""
                    )
                    partial.state = "partial"
                    ctx.run.sink.emit("add_message", partial)
                ctx.run.sink.emit("token", {"chunk": chunk.text, "id": partial.id})
    if final is None:
        final = ChatResponse(text="")
    ctx.run.add_usage(to_usage(final.usage))
    return Generation(final, partial.id if partial is not None else "")


def ai_message(ctx: NodeContext, generation: Generation) -> Message:
    response = generation.response
    message = ctx.new_message(response.text, sender="Machine", sender_name="AI", source_field="")
    if generation.message_id:
        message.id = generation.message_id
    message.usage = to_usage(response.usage)
    return message
