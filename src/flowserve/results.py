"""Langflow's run result shape, built from what the engine produced.

``RunResponse`` is byte-for-byte the structure Langflow 1.13 answers on
``POST /api/v1/run`` (see tests/fixtures/langflow-1.13-responses), plus our
``metadata``. The API, the streaming ``end`` event, the job worker and MCP all
render results through this module, so they can never drift apart.
"""

from __future__ import annotations

from typing import Any

import msgspec

from flowserve.engine.run import GraphRun, NodeRun
from flowserve.engine.types import Message, TokenUsage, to_text


class SourceBody(msgspec.Struct):
    id: str | None
    display_name: str | None
    source: str | None


class UsageBody(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class PropertiesBody(msgspec.Struct):
    text_color: str | None = None
    background_color: str | None = None
    edited: bool = False
    source: SourceBody = msgspec.field(default_factory=lambda: SourceBody(None, None, None))
    icon: str | None = None
    allow_markdown: bool = False
    positive_feedback: bool | None = None
    state: str = "complete"
    targets: list[Any] = msgspec.field(default_factory=list)
    usage: UsageBody | None = None
    build_duration: int | None = None


class SessionMetadata(msgspec.Struct):
    graph_run_id: str


class MessageData(msgspec.Struct):
    timestamp: str
    sender: str
    sender_name: str
    session_id: str
    context_id: str
    text: str
    files: list[str]
    error: bool
    edit: bool
    properties: PropertiesBody
    category: str
    content_blocks: list[Any]
    session_metadata: SessionMetadata
    id: str
    flow_id: str
    run_id: str
    duration: int | None = None


class MessageBody(msgspec.Struct):
    """A Message as Langflow serialises it in run results."""

    text_key: str
    data: MessageData
    default_value: str
    sender: str
    sender_name: str
    files: list[str]
    session_id: str
    context_id: str
    run_id: str
    timestamp: str
    flow_id: str
    error: bool
    edit: bool
    properties: PropertiesBody
    category: str
    content_blocks: list[Any]
    duration: int | None
    session_metadata: SessionMetadata
    text: str


class StreamMessageBody(MessageBody):
    """The ``add_message`` event data: the same body with the message id at the end."""

    id: str = ""


class OutputValue(msgspec.Struct):
    message: Any
    type: str


class ChatMessageBody(msgspec.Struct):
    message: str
    sender: str
    sender_name: str
    session_id: str
    stream_url: str | None
    component_id: str
    files: list[str]
    type: str


class ResultData(msgspec.Struct):
    """One output component's result (Langflow's ``ResultData``)."""

    results: dict[str, Any]
    artifacts: dict[str, Any]
    outputs: dict[str, OutputValue]
    logs: dict[str, list[Any]]
    messages: list[ChatMessageBody]
    timedelta: float | None
    duration: str | None
    component_display_name: str
    component_id: str
    used_frozen_result: bool
    token_usage: UsageBody | None


class RunOutputs(msgspec.Struct):
    inputs: dict[str, Any]
    outputs: list[ResultData]


class RunMetadata(msgspec.Struct):
    duration: float
    tokens_used: int | None
    run_id: str


class RunResponse(msgspec.Struct):
    session_id: str
    outputs: list[RunOutputs]
    metadata: RunMetadata


def _usage(usage: TokenUsage | None) -> UsageBody | None:
    if usage is None:
        return None
    return UsageBody(usage.input_tokens, usage.output_tokens, usage.total_tokens)


def properties_body(message: Message) -> PropertiesBody:
    """A message's ``properties`` as Langflow serialises them (run results, monitor)."""
    src = message.source
    return PropertiesBody(
        source=SourceBody(src.id, src.display_name, src.source),
        state=message.state,
        usage=_usage(message.usage),
    )


def message_body(message: Message, *, stream: bool = False) -> MessageBody:
    properties = properties_body(message)
    meta = SessionMetadata(message.run_id)
    data = MessageData(
        timestamp=message.timestamp,
        sender=message.sender,
        sender_name=message.sender_name,
        session_id=message.session_id,
        context_id=message.context_id,
        text=message.text,
        files=message.files,
        error=message.error,
        edit=message.edit,
        properties=properties,
        category=message.category,
        content_blocks=[],
        session_metadata=meta,
        id=message.id,
        flow_id=message.flow_id,
        run_id=message.run_id,
    )
    cls = StreamMessageBody if stream else MessageBody
    body = cls(
        text_key="text",
        data=data,
        default_value="",
        sender=message.sender,
        sender_name=message.sender_name,
        files=message.files,
        session_id=message.session_id,
        context_id=message.context_id,
        run_id=message.run_id,
        timestamp=message.timestamp,
        flow_id=message.flow_id,
        error=message.error,
        edit=message.edit,
        properties=properties,
        category=message.category,
        content_blocks=[],
        duration=None,
        session_metadata=meta,
        text=message.text,
    )
    if isinstance(body, StreamMessageBody):
        body.id = message.id
    return body


def render_value(value: Any) -> Any:
    """An output value as Langflow serialises it in ``results``."""
    if isinstance(value, Message):
        return message_body(value)
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if isinstance(value, str | int | float | bool | list | dict) or value is None:
        return value
    return to_text(value)


def result_data(run: NodeRun) -> ResultData:
    node = run.node
    results = {name: render_value(value) for name, value in run.outputs.items()}
    outputs: dict[str, OutputValue] = {}
    artifacts: dict[str, Any] = {}
    for name, value in run.outputs.items():
        text = to_text(value)
        outputs[name] = OutputValue(message=text, type="text")
    first = next(iter(run.outputs.values()), None)
    if isinstance(first, Message):
        artifacts = {
            "message": first.text,
            "sender": first.sender,
            "sender_name": first.sender_name,
            "files": first.files,
            "type": "object",
        }
    messages = [
        ChatMessageBody(
            message=m.text,
            sender=m.sender,
            sender_name=m.sender_name,
            session_id=m.session_id,
            stream_url=None,
            component_id=node.id,
            files=m.files,
            type="text",
        )
        for m in run.messages
    ]
    usage = next((m.usage for m in run.messages if m.usage is not None), None)
    return ResultData(
        results=results,
        artifacts=artifacts,
        outputs=outputs,
        logs={name: list(run.logs) for name in run.outputs},
        messages=messages,
        timedelta=None,
        duration=None,
        component_display_name=node.display_name,
        component_id=node.id,
        used_frozen_result=False,
        token_usage=_usage(usage),
    )


def run_response(
    *,
    session_id: str,
    inputs: dict[str, Any],
    graph_run: GraphRun,
    output_ids: tuple[str, ...],
    duration: float,
    usage: TokenUsage | None,
    run_id: str,
) -> RunResponse:
    results = [
        result_data(graph_run.nodes[i])
        for i in output_ids
        if i in graph_run.nodes and not graph_run.nodes[i].skipped
    ]
    return RunResponse(
        session_id=session_id,
        outputs=[RunOutputs(inputs=inputs, outputs=results)],
        metadata=RunMetadata(
            duration=round(duration, 6),
            tokens_used=usage.total_tokens if usage else None,
            run_id=run_id,
        ),
    )


def main_text(response: RunResponse) -> str:
    """The text of the first output message: what a caller usually wants."""
    for outputs in response.outputs:
        for result in outputs.outputs:
            for message in result.messages:
                return message.message
            for value in result.outputs.values():
                return str(value.message)
    return ""


class HostedResult(msgspec.Struct):
    output: str


class HostedMetadata(msgspec.Struct):
    duration: float
    # Total tokens the run's model calls reported; 0 when no model was called.
    tokens_used: int


class HostedRunResponse(msgspec.Struct):
    """The short answer of ``POST /api/v1/flows/{flow_id}/run`` (the hosted Langflow docs)."""

    result: HostedResult
    session_id: str
    metadata: HostedMetadata


def hosted_response(response: RunResponse) -> HostedRunResponse:
    return HostedRunResponse(
        result=HostedResult(main_text(response)),
        session_id=response.session_id,
        metadata=HostedMetadata(
            duration=response.metadata.duration,
            tokens_used=response.metadata.tokens_used or 0,
        ),
    )
