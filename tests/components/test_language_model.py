"""basic-prompting.json (ChatInput -> Prompt -> Language Model -> ChatOutput), unmodified."""

from __future__ import annotations

from typing import Any

import pytest

from flowserve.components.models import AnthropicModel, OpenAIModel
from flowserve.engine import Graph
from flowserve.errors import Forbidden, Invalid, UpstreamError
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.flows import FlowRun, RecordingSink, load_graph, make_node, node_context
from tests.fakes.flows import run_graph as _run_graph
from tests.fakes.openai_server import FakeOpenAI

# The fakes listen on loopback, which the outbound guard refuses to base URLs a caller
# chose (tweaks, headers) unless the operator allowlists it, as these tests do.
LOOPBACK = {"outbound_allowlist": "127.0.0.1"}


async def run_graph(graph: Graph, **kwargs: Any) -> FlowRun:
    kwargs["services"] = {**LOOPBACK, **(kwargs.get("services") or {})}
    return await _run_graph(graph, **kwargs)


LM = "LanguageModelComponent-FLeYF"
SYSTEM = "Answer the user as if you were a GenAI expert"


async def test_model_and_base_url_chosen_by_tweak(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    run = await run_graph(
        graph,
        input_value="What is Langflow?",
        tweaks={
            LM: {
                "model": [{"name": "gpt-4o-mini", "provider": "OpenAI"}],
                "base_url": fake_openai.base_url,
                "api_key": "sk-tweak",
            }
        },
    )
    assert run.output_text() == "Echo: What is Langflow?"
    sent = fake_openai.requests[0]
    assert sent["model"] == "gpt-4o-mini"
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["messages"][0]["content"].startswith(SYSTEM)
    assert sent["temperature"] == pytest.approx(0.1)
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-tweak"


async def test_key_and_base_url_from_variables(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    run = await run_graph(
        graph,
        input_value="hi",
        tweaks={LM: {"model": "gpt-4o-mini"}},
        variables={"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": fake_openai.base_url},
    )
    assert run.output_text() == "Echo: hi"
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-env"
    assert run.ctx.usage is not None
    assert run.ctx.usage.output_tokens == 2


async def test_streaming_run_emits_partial_message_then_tokens(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    sink = RecordingSink()
    run = await run_graph(
        graph,
        input_value="stream these words please",
        streaming=True,
        sink=sink,
        tweaks={LM: {"model": ["gpt-4o-mini"]}},
        variables={"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": fake_openai.base_url},
    )
    assert fake_openai.requests[0]["stream"] is True
    partial = [m for m in sink.named("add_message") if m.state == "partial"]
    assert len(partial) == 1
    assert partial[0].text == ""
    tokens = sink.named("token")
    assert len(tokens) > 3
    assert {t["id"] for t in tokens} == {partial[0].id}
    assert "".join(t["chunk"] for t in tokens) == "Echo: stream these words please"
    assert run.output_text() == "Echo: stream these words please"
    # the answer the model produced keeps the id its tokens were streamed under
    model_message = run.result.nodes[LM].outputs["text_output"]
    assert model_message.id == partial[0].id
    assert run.ctx.usage is not None
    assert run.ctx.usage.total_tokens > 0


async def test_no_model_selected_is_a_422_naming_the_node() -> None:
    graph = load_graph("basic-prompting.json")
    with pytest.raises(Invalid) as caught:
        await run_graph(graph, input_value="hi", variables={"OPENAI_API_KEY": "sk"})
    assert LM in caught.value.detail
    assert "model selection is required" in caught.value.detail


async def test_missing_key_fails_before_any_call(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    with pytest.raises(Invalid, match="OPENAI_API_KEY"):
        await run_graph(graph, input_value="hi", tweaks={LM: {"model": "gpt-4o-mini"}})
    assert fake_openai.requests == []


async def test_provider_error_names_provider_and_hides_key(fake_openai: FakeOpenAI) -> None:
    fake_openai.require_key = "sk-right"
    graph = load_graph("basic-prompting.json")
    with pytest.raises(UpstreamError) as caught:
        await run_graph(
            graph,
            input_value="hi",
            tweaks={LM: {"model": "gpt-4o-mini", "api_key": "sk-wrong-secret"}},
            variables={"OPENAI_BASE_URL": fake_openai.base_url},
        )
    detail = caught.value.detail
    assert "OpenAI" in detail
    assert "Incorrect API key provided" in detail
    assert "401" in detail
    assert LM in detail
    assert "sk-wrong-secret" not in detail


async def test_unsupported_provider_is_a_422() -> None:
    graph = load_graph("basic-prompting.json")
    with pytest.raises(Invalid, match="Google Generative AI"):
        await run_graph(
            graph,
            input_value="hi",
            tweaks={
                LM: {"model": [{"name": "gemini-3.5-flash", "provider": "Google Generative AI"}]}
            },
        )


async def test_anthropic_model_by_tweak(fake_anthropic: FakeAnthropic) -> None:
    graph = load_graph("basic-prompting.json")
    run = await run_graph(
        graph,
        input_value="Bonjour",
        tweaks={LM: {"model": [{"name": "claude-haiku-4-5", "provider": "Anthropic"}]}},
        variables={"ANTHROPIC_API_KEY": "sk-ant", "ANTHROPIC_BASE_URL": fake_anthropic.base_url},
    )
    assert run.output_text() == "Echo: Bonjour"
    sent = fake_anthropic.requests[0]
    assert sent["system"].startswith(SYSTEM)
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Bonjour"}]}]
    assert sent["max_tokens"] == 4096
    assert fake_anthropic.headers[0]["x-api-key"] == "sk-ant"


async def test_anthropic_streaming(fake_anthropic: FakeAnthropic) -> None:
    graph = load_graph("basic-prompting.json")
    sink = RecordingSink()
    run = await run_graph(
        graph,
        input_value="one two three",
        streaming=True,
        sink=sink,
        tweaks={LM: {"model": "claude-haiku-4-5"}},
        variables={"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": fake_anthropic.base_url},
    )
    assert "".join(t["chunk"] for t in sink.named("token")) == "Echo: one two three"
    assert run.output_text() == "Echo: one two three"
    assert run.ctx.usage is not None
    assert run.ctx.usage.input_tokens > 0


async def test_env_key_is_not_sent_to_a_tweaked_base_url(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    run = await run_graph(
        graph,
        input_value="hi",
        tweaks={LM: {"model": "gpt-4o-mini", "base_url": fake_openai.base_url}},
        variables={"OPENAI_API_KEY": "sk-server-secret"},
    )
    assert run.output_text() == "Echo: hi"  # keyless OpenAI-compatible servers still work
    assert "authorization" not in fake_openai.headers[0]


async def test_ollama_model_needs_no_key(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    root = fake_openai.base_url.removesuffix("/v1")
    run = await run_graph(
        graph,
        input_value="local",
        tweaks={
            LM: {"model": [{"name": "llama3.2", "provider": "Ollama"}], "ollama_base_url": root}
        },
    )
    assert run.output_text() == "Echo: local"
    assert fake_openai.requests[0]["model"] == "llama3.2"


async def test_legacy_openai_component_fields(fake_openai: FakeOpenAI) -> None:
    component = OpenAIModel(make_node("OpenAIModel"))
    ctx = node_context(wanted={"text_output"}, services=LOOPBACK)
    out = await component.run(
        ctx,
        {
            "model_name": "gpt-4o",
            "openai_api_base": fake_openai.base_url,
            "api_key": "sk-field",
            "input_value": "old style",
            "system_message": "terse",
            "max_tokens": 7,
        },
    )
    assert out["text_output"].text == "Echo: old style"
    assert fake_openai.requests[0]["max_tokens"] == 7
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-field"


async def test_legacy_anthropic_component_fields(fake_anthropic: FakeAnthropic) -> None:
    component = AnthropicModel(make_node("AnthropicModel"))
    ctx = node_context(wanted={"text_output", "model_output"}, services=LOOPBACK)
    out = await component.run(
        ctx,
        {
            "model_name": "claude-3-5-haiku-latest",
            "anthropic_api_url": fake_anthropic.base_url,
            "api_key": "ant",
            "input_value": "hey",
        },
    )
    assert out["text_output"].text == "Echo: hey"
    assert out["model_output"].provider.name == "Anthropic"
    assert fake_anthropic.requests[0]["model"] == "claude-3-5-haiku-latest"


async def test_env_key_is_not_sent_to_a_base_url_from_request_headers(
    fake_openai: FakeOpenAI,
) -> None:
    graph = load_graph("basic-prompting.json")
    environment = {"OPENAI_API_KEY": "sk-server-secret"}
    # the runner's variables: the environment overlaid with X-LANGFLOW-GLOBAL-VAR-* headers
    variables = {**environment, "OPENAI_BASE_URL": fake_openai.base_url}
    await run_graph(
        graph,
        input_value="hi",
        tweaks={LM: {"model": "gpt-4o-mini"}},
        variables=variables,
        services={"environment": environment},
    )
    assert "authorization" not in fake_openai.headers[0]


async def test_env_key_goes_to_the_operators_base_url(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    environment = {"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": fake_openai.base_url}
    await run_graph(
        graph,
        input_value="hi",
        tweaks={LM: {"model": "gpt-4o-mini"}},
        variables=dict(environment),
        services={"environment": environment},
    )
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-server"


async def test_callers_own_header_key_may_go_to_their_base_url(fake_openai: FakeOpenAI) -> None:
    graph = load_graph("basic-prompting.json")
    environment = {"OPENAI_API_KEY": "sk-server"}
    variables = {"OPENAI_API_KEY": "sk-caller", "OPENAI_BASE_URL": fake_openai.base_url}
    await run_graph(
        graph,
        input_value="hi",
        tweaks={LM: {"model": "gpt-4o-mini"}},
        variables=variables,
        services={"environment": environment},
    )
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-caller"


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:9/v1", "http://169.254.169.254/latest", "http://localhost/v1"]
)
async def test_a_tweaked_base_url_into_the_private_network_is_refused(base_url: str) -> None:
    graph = load_graph("basic-prompting.json")
    with pytest.raises(Forbidden, match=r"private, loopback or link-local"):
        await _run_graph(
            graph,
            input_value="hi",
            tweaks={LM: {"model": "gpt-4o-mini", "base_url": base_url, "api_key": "sk-mine"}},
        )
