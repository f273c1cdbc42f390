"""Chat and text inputs and outputs: where a run's input enters and its answer leaves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Message, to_text

_MESSAGE_FIELDS = (
    Input(
        "should_store_message",
        "bool",
        True,
        "Store Messages",
        "Store the message in the history.",
        advanced=True,
    ),
    Input(
        "session_id",
        "str",
        "",
        "Session ID",
        "The session ID of the chat. If empty, the current session ID parameter will be used.",
        advanced=True,
    ),
    Input("context_id", "str", "", "Context ID", advanced=True),
)


class ChatInput(Component):
    type_name = "ChatInput"
    display_name = "Chat Input"
    description = "Get chat inputs from the Playground."
    category = "input_output"
    icon = "MessagesSquare"
    role = "input"
    quick = True
    inputs = (
        Input(
            "input_value", "str", "", "Input Text", "Message to be passed as input.", multiline=True
        ),
        Input("sender", "str", "User", "Sender Type", advanced=True, options=("Machine", "User")),
        Input("sender_name", "str", "User", "Sender Name", advanced=True),
        *_MESSAGE_FIELDS,
        Input("files", "list", [], "Files", advanced=True, is_list=True),
    )
    outputs = (Output("message", ("Message",), "Chat Message", "message_response"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        message = ctx.new_message(
            to_text(params.get("input_value")),
            sender=params.get("sender") or "User",
            sender_name=params.get("sender_name") or "User",
            session_id=params.get("session_id") or "",
        )
        message.context_id = params.get("context_id") or ""
        files = params.get("files")
        if isinstance(files, list):
            message.files = [str(f) for f in files if f]
        await ctx.send_message(message, store=bool(params.get("should_store_message")))
        return {"message": message}


class ChatOutput(Component):
    type_name = "ChatOutput"
    display_name = "Chat Output"
    description = "Display a chat message in the Playground."
    category = "input_output"
    icon = "MessagesSquare"
    role = "output"
    quick = True
    inputs = (
        Input(
            "input_value",
            "any",
            "",
            "Inputs",
            "Message to be passed as output.",
            input_types=("Data", "JSON", "DataFrame", "Table", "Message"),
        ),
        Input(
            "sender", "str", "Machine", "Sender Type", advanced=True, options=("Machine", "User")
        ),
        Input("sender_name", "str", "AI", "Sender Name", advanced=True),
        *_MESSAGE_FIELDS,
        Input("data_template", "str", "{text}", "Data Template", advanced=True),
        Input("clean_data", "bool", True, "Basic Clean Data", advanced=True),
    )
    outputs = (Output("message", ("Message",), "Output Message", "message_response"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        value = params.get("input_value")
        message = ctx.new_message(
            to_text(value),
            sender=params.get("sender") or "Machine",
            sender_name=params.get("sender_name") or "AI",
            session_id=params.get("session_id") or "",
        )
        message.context_id = params.get("context_id") or ""
        if isinstance(value, Message):
            message.usage = value.usage
            message.files = list(value.files)
            if value.sender == "Machine" and value.id:
                # A model's streamed message: the final one keeps the id its tokens carried.
                message.id = value.id
        await ctx.send_message(message, store=bool(params.get("should_store_message")))
        return {"message": message}


class TextInput(Component):
    type_name = "TextInput"
    display_name = "Text Input"
    description = "Get user text inputs."
    category = "input_output"
    icon = "type"
    role = "input"
    quick = True
    inputs = (
        Input("input_value", "str", "", "Text", "Text to be passed as input.", multiline=True),
    )
    outputs = (Output("text", ("Message",), "Output Text", "text_response"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        message = Message(
            text=to_text(params.get("input_value")),
            session_id=ctx.run.session_id,
            flow_id=ctx.run.flow_id,
        )
        return {"text": message}


class TextOutput(Component):
    type_name = "TextOutput"
    display_name = "Text Output"
    description = "Sends text output via API."
    category = "input_output"
    icon = "type"
    role = "output"
    quick = True
    inputs = (
        Input(
            "input_value",
            "any",
            "",
            "Inputs",
            "Text to be passed as output.",
            input_types=("Message",),
        ),
    )
    outputs = (Output("text", ("Message",), "Output Text", "text_response"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        message = Message(
            text=to_text(params.get("input_value")),
            session_id=ctx.run.session_id,
            flow_id=ctx.run.flow_id,
        )
        return {"text": message}
