"""Language model components: ``LanguageModelComponent`` and the older per-provider
``OpenAIModel``, ``AnthropicModel`` and ``OllamaModel``. Model choice, keys and
calls live in ``llm``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from flowserve.components.llm import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    PROVIDERS,
    ai_message,
    generate,
    resolve_model,
)
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import to_text
from flowserve.providers import ChatMessage

_COMMON_INPUTS = (
    Input(
        "input_value",
        "str",
        "",
        "Input",
        "The input text to send to the model.",
        input_types=("Message",),
    ),
    Input(
        "system_message",
        "str",
        "",
        "System Message",
        "A system message that helps set the behavior of the assistant.",
        input_types=("Message",),
        multiline=True,
    ),
    Input("stream", "bool", False, "Stream", "Whether to stream the response.", advanced=True),
    Input(
        "temperature",
        "float",
        0.1,
        "Temperature",
        "Controls randomness in responses.",
        advanced=True,
    ),
    Input(
        "max_tokens",
        "int",
        0,
        "Max Tokens",
        "Maximum number of tokens to generate. 0 means the provider's default.",
        advanced=True,
    ),
    Input("api_key", "secret", "", "API Key", "The model provider's API key.", advanced=True),
    Input(
        "base_url",
        "str",
        "",
        "Base URL",
        "The API base URL; any OpenAI-compatible server works.",
        advanced=True,
    ),
    Input(
        "timeout",
        "float",
        DEFAULT_TIMEOUT,
        "Timeout",
        "Seconds before a request fails.",
        advanced=True,
    ),
    Input(
        "max_retries",
        "int",
        DEFAULT_RETRIES,
        "Max Retries",
        "Retries on rate limits and server errors.",
        advanced=True,
    ),
)
_OUTPUTS = (
    Output("text_output", ("Message",), "Model Response", "text_response"),
    Output("model_output", ("LanguageModel",), "Language Model", "build_model"),
)


class LanguageModelComponent(Component):
    type_name = "LanguageModelComponent"
    display_name = "Language Model"
    description = "Runs a language model given a specified provider."
    category = "models_and_agents"
    icon = "brain-circuit"
    provider_name: ClassVar[str | None] = None
    inputs: ClassVar[tuple[Input, ...]] = (
        Input(
            "model",
            "model",
            "",
            "Language Model",
            "Select your model provider",
            input_types=("LanguageModel",),
        ),
        Input(
            "provider",
            "str",
            "",
            "Model Provider",
            advanced=True,
            options=tuple(p.name for p in PROVIDERS.values()),
        ),
        Input("model_name", "str", "", "Model Name", advanced=True),
        Input("ollama_base_url", "str", "", "Ollama API URL", advanced=True),
        *_COMMON_INPUTS,
    )
    outputs = _OUTPUTS

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        settings = resolve_model(self, ctx, params, provider_name=self.provider_name)
        outputs: dict[str, Any] = {}
        if "model_output" in ctx.wanted:
            outputs["model_output"] = settings
        if "text_output" in ctx.wanted:
            messages: list[ChatMessage] = []
            system = to_text(params.get("system_message")).strip()
            if system:
                messages.append(ChatMessage(role="system", content=system))
            messages.append(ChatMessage(role="user", content=to_text(params.get("input_value"))))
            generation = await generate(
                ctx, settings, settings.request(messages), stream=ctx.run.streaming
            )
            outputs["text_output"] = ai_message(ctx, generation)
        return outputs


class OpenAIModel(LanguageModelComponent):
    type_name = "OpenAIModel"
    display_name = "OpenAI"
    description = "Generates text using OpenAI LLMs."
    icon = "OpenAI"
    provider_name = "OpenAI"
    inputs = (
        Input("model_name", "str", "gpt-4o-mini", "Model Name"),
        Input(
            "openai_api_base",
            "str",
            "",
            "OpenAI API Base",
            "The base URL of the OpenAI API. Defaults to https://api.openai.com/v1.",
            advanced=True,
        ),
        Input("json_mode", "bool", False, "JSON Mode", advanced=True),
        Input("seed", "int", 1, "Seed", advanced=True),
        Input("model_kwargs", "dict", {}, "Model Kwargs", advanced=True),
        *_COMMON_INPUTS,
    )


class AnthropicModel(LanguageModelComponent):
    type_name = "AnthropicModel"
    display_name = "Anthropic"
    description = "Generate text using Anthropic's Messages API."
    icon = "Anthropic"
    provider_name = "Anthropic"
    inputs = (
        Input("model_name", "str", "claude-3-5-haiku-latest", "Model Name"),
        Input(
            "anthropic_api_url",
            "str",
            "",
            "Anthropic API URL",
            "Endpoint of the Anthropic API. Defaults to https://api.anthropic.com.",
            advanced=True,
        ),
        Input("tool_model_enabled", "bool", True, "Enable Tool Models", advanced=True),
        *_COMMON_INPUTS,
    )


class OllamaModel(LanguageModelComponent):
    type_name = "OllamaModel"
    display_name = "Ollama"
    description = "Generate text using Ollama Local LLMs."
    icon = "Ollama"
    provider_name = "Ollama"
    inputs = (
        Input("model_name", "str", "", "Model Name"),
        Input("base_url", "str", "", "Base URL", "Endpoint of the Ollama API."),
        *(i for i in _COMMON_INPUTS if i.name != "base_url"),
    )
