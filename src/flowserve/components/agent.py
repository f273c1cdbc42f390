"""Agent: a model that calls tools in a loop until it can answer.

Each turn sends the system prompt, the session's last ``n_messages`` messages
(without the current input, which ChatInput may already have stored), and the
input; tools come from nodes connected to ``tools`` (their
``component_as_tool`` output) plus the built-in calculator and current-date
tools when enabled. Tool failures go back to the model as ``Error: ...`` so it
can recover. With a streaming run, the tokens of each model turn are streamed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from flowserve.components.llm import (
    ModelSettings,
    ai_message,
    generate,
    resolve_model,
    to_usage,
)
from flowserve.components.structured import extract_json, schema_from_table
from flowserve.components.tools import (
    CALCULATOR_TOOL,
    COMPONENT_AS_TOOL,
    CURRENT_DATE_TOOL,
    Tool,
    ToolComponent,
)
from flowserve.engine.component import Input, NodeContext, Output
from flowserve.engine.types import Data, Message, TokenUsage, to_text
from flowserve.errors import FlowserveError, RunFailed
from flowserve.providers import ChatMessage, ChatResponse, ToolCall

DEFAULT_FORMAT_INSTRUCTIONS = (
    "You are an AI that extracts structured JSON objects from unstructured text. "
    "Answer with one JSON object only, following the schema."
)


class Agent(ToolComponent):
    type_name = "Agent"
    display_name = "Agent"
    description = "Define the agent's instructions, then enter a task to complete using tools."
    category = "models_and_agents"
    icon = "bot"
    tool_output = "response"
    tool_name = "Agent"
    tool_args = ("input_value",)
    inputs = (
        Input(
            "model",
            "model",
            "",
            "Language Model",
            "Select your model provider",
            input_types=("LanguageModel",),
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
            "system_prompt",
            "str",
            "You are a helpful assistant that can use tools to answer questions and perform tasks.",
            "Agent Instructions",
            "System Prompt: Initial instructions and context provided to guide the agent's "
            "behavior.",
            input_types=("Message",),
            multiline=True,
        ),
        Input(
            "input_value",
            "str",
            "",
            "Input",
            "The input provided by the user for the agent to process.",
            input_types=("Message",),
        ),
        Input(
            "tools",
            "any",
            None,
            "Tools",
            "These are the tools that the agent can use.",
            is_list=True,
            input_types=("Tool",),
        ),
        Input(
            "n_messages",
            "int",
            100,
            "Number of Chat History Messages",
            "Number of chat history messages to retrieve.",
            advanced=True,
        ),
        Input(
            "max_iterations",
            "int",
            15,
            "Max Iterations",
            "The maximum number of attempts the agent can make to complete its task.",
            advanced=True,
        ),
        Input("add_calculator_tool", "bool", True, "Calculator", advanced=True),
        Input("add_current_date_tool", "bool", True, "Current Date", advanced=True),
        Input("temperature", "float", None, "Temperature", advanced=True),
        Input("max_tokens", "int", 0, "Max Tokens", advanced=True),
        Input("stream", "bool", False, "Stream", advanced=True),
        Input("handle_parsing_errors", "bool", True, "Handle Parse Errors", advanced=True),
        Input(
            "format_instructions",
            "str",
            DEFAULT_FORMAT_INSTRUCTIONS,
            "Output Format Instructions",
            advanced=True,
            multiline=True,
        ),
        Input("output_schema", "table", [], "Output Schema", advanced=True),
        Input(
            "agent_description",
            "str",
            "A helpful assistant with access to the following tools:",
            "Agent Description",
            advanced=True,
        ),
        Input("context_id", "str", "", "Context ID", advanced=True),
        Input("verbose", "bool", True, "Verbose", advanced=True),
        Input("timeout", "float", None, "Timeout", advanced=True),
        Input("max_retries", "int", None, "Max Retries", advanced=True),
    )
    outputs = (
        Output("response", ("Message",), "Response", "message_response"),
        Output("structured_response", ("Data", "JSON"), "Structured Response", "json_response"),
        COMPONENT_AS_TOOL,
    )

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        settings = resolve_model(self, ctx, params)
        question = params.get("input_value")
        messages: list[ChatMessage] = []
        system = _system_prompt(to_text(params.get("system_prompt")), settings)
        if system:
            messages.append(ChatMessage(role="system", content=system))
        messages.extend(await _history(ctx, params, question))
        messages.append(ChatMessage(role="user", content=to_text(question)))
        tools = _tools(params)
        answer = await self._loop(ctx, params, settings, messages, tools)
        outputs: dict[str, Any] = {}
        if "response" in ctx.wanted:
            outputs["response"] = answer
        if "structured_response" in ctx.wanted:
            outputs["structured_response"] = await _structured(ctx, params, settings, answer.text)
        return outputs

    async def _loop(
        self,
        ctx: NodeContext,
        params: Mapping[str, Any],
        settings: ModelSettings,
        messages: list[ChatMessage],
        tools: list[Tool],
    ) -> Message:
        by_name = {t.name: t for t in tools}
        specs = tuple(t.spec() for t in tools)
        limit = max(1, int(params.get("max_iterations") or 15))
        usage: TokenUsage | None = None
        for _ in range(limit):
            generation = await generate(
                ctx, settings, settings.request(messages, specs), stream=ctx.run.streaming
            )
            response = generation.response
            turn = to_usage(response.usage)
            if turn is not None:
                usage = turn if usage is None else usage + turn
            if not response.tool_calls:
                answer = ai_message(ctx, generation)
                answer.usage = usage  # every turn of the loop, not just the last
                return answer
            messages.append(
                ChatMessage(role="assistant", content=response.text, tool_calls=response.tool_calls)
            )
            results = await asyncio.gather(
                *(self._call(ctx, by_name, call, params) for call in response.tool_calls)
            )
            messages.extend(
                ChatMessage(role="tool", content=result, tool_call_id=call.id, name=call.name)
                for call, result in zip(response.tool_calls, results, strict=True)
            )
        raise RunFailed(
            f"the agent stopped after {limit} iterations (max_iterations) without a final answer"
        )

    async def _call(
        self, ctx: NodeContext, tools: Mapping[str, Tool], call: ToolCall, params: Mapping[str, Any]
    ) -> str:
        tool = tools.get(call.name)
        if tool is None:
            result = f"Error: there is no tool named '{call.name}'"
        else:
            try:
                result = await tool.invoke(call.arguments)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not params.get("handle_parsing_errors", True):
                    raise
                detail = exc.detail if isinstance(exc, FlowserveError) else str(exc)
                result = f"Error: {detail or type(exc).__name__}"
        entry = {
            "name": call.name,
            "type": "tool",
            "message": {"tool": call.name, "input": call.arguments, "output": result[:2000]},
        }
        ctx.logs.append(entry)
        # Streaming clients see tool activity as it happens, as Langflow's agents log it.
        ctx.run.sink.emit("log", {"id": ctx.node_id, **entry})
        return result


def _system_prompt(template: str, settings: ModelSettings) -> str:
    """Langflow's agent placeholders; other braces stay as they are."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return (
        template.replace("{current_date}", today)
        .replace("{model_name}", settings.model)
        .replace("{optional_user_context}", "")
    ).strip()


async def _history(ctx: NodeContext, params: Mapping[str, Any], question: Any) -> list[ChatMessage]:
    limit = int(params.get("n_messages") or 0)
    if limit <= 0:
        return []
    current = question.id if isinstance(question, Message) and question.id else None
    stored = await ctx.run.memory.history(limit=limit + 1, order="ASC")
    kept = [m for m in stored if not (current and m.id == current) and m.text and not m.error]
    return [
        ChatMessage(role="user" if m.sender == "User" else "assistant", content=m.text)
        for m in kept[-limit:]
    ]


def _tools(params: Mapping[str, Any]) -> list[Tool]:
    connected = params.get("tools")
    items = connected if isinstance(connected, list) else [connected]
    tools: list[Tool] = []
    for item in items:
        if isinstance(item, Tool):
            tools.append(item)
        elif isinstance(item, list):
            tools.extend(t for t in item if isinstance(t, Tool))
    if params.get("add_calculator_tool"):
        tools.append(CALCULATOR_TOOL)
    if params.get("add_current_date_tool"):
        tools.append(CURRENT_DATE_TOOL)
    unique: list[Tool] = []
    seen: set[str] = set()
    for tool in tools:
        name, n = tool.name, 2
        while name in seen:
            name, n = f"{tool.name}_{n}", n + 1
        seen.add(name)
        unique.append(
            tool
            if name == tool.name
            else Tool(name, tool.description, tool.parameters, tool.invoke)
        )
    return unique


async def _structured(
    ctx: NodeContext, params: Mapping[str, Any], settings: ModelSettings, answer: str
) -> Data:
    schema = schema_from_table(params.get("output_schema") or [])
    instructions = to_text(params.get("format_instructions")) or DEFAULT_FORMAT_INSTRUCTIONS
    if schema["properties"]:
        instructions += "\nJSON Schema:\n" + msgspec.json.encode(schema).decode()
    request = settings.request(
        [
            ChatMessage(role="system", content=instructions),
            ChatMessage(role="user", content=answer),
        ],
        json_mode=True,
    )
    reply: ChatResponse = (await generate(ctx, settings, request, stream=False)).response
    try:
        value = extract_json(reply.text)
    except ValueError:
        return Data({"text": reply.text, "error": "the model's reply contains no JSON"})
    return Data(value if isinstance(value, dict) else {"results": value})
