"""Conversation memory: Message History (``Memory``) and ``MemoryBase`` retrieval.

Both read the session store through ``ctx.run.memory``. MemoryBase ranks the
stored messages against a query lexically (term overlap weighted by rarity);
a ranking with embeddings can replace ``rank`` later without changing the
component's fields or outputs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from flowserve.components.prompt import render
from flowserve.components.tools import COMPONENT_AS_TOOL, ToolComponent
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Data, Message, to_text

# How far back MemoryBase searches; a session store keeps at most this many anyway.
SEARCH_WINDOW = 10_000

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "s",
        "so",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def message_record(message: Message, *, metadata: bool = True) -> dict[str, Any]:
    record: dict[str, Any] = {"text": message.text}
    if metadata:
        record.update(
            sender=message.sender,
            sender_name=message.sender_name,
            session_id=message.session_id,
            timestamp=message.timestamp,
            id=message.id,
        )
    return record


class Memory(Component):
    type_name = "Memory"
    display_name = "Message History"
    description = "Stores or retrieves stored chat messages."
    category = "models_and_agents"
    icon = "message-square-more"
    inputs = (
        Input("mode", "str", "Retrieve", "Mode", options=("Retrieve", "Store")),
        Input(
            "message",
            "str",
            "",
            "Message",
            "The chat message to be stored.",
            input_types=("Message",),
        ),
        Input("memory", "any", None, "External Memory", advanced=True),
        Input(
            "sender_type",
            "str",
            "Machine and User",
            "Sender Type",
            options=("Machine", "User", "Machine and User"),
            advanced=True,
        ),
        Input("sender", "str", "", "Sender", advanced=True),
        Input("sender_name", "str", "", "Sender Name", advanced=True),
        Input("n_messages", "int", 100, "Number of Messages", advanced=True),
        Input("session_id", "str", "", "Session ID", advanced=True),
        Input("context_id", "str", "", "Context ID", advanced=True),
        Input(
            "order", "str", "Ascending", "Order", options=("Ascending", "Descending"), advanced=True
        ),
        Input(
            "template", "str", "{sender_name}: {text}", "Template", multiline=True, advanced=True
        ),
    )
    outputs = (
        Output("messages_text", ("Message",), "Messages", "retrieve_messages_as_text"),
        Output("dataframe", ("Table", "DataFrame"), "Table", "retrieve_messages_dataframe"),
        Output("stored_messages", ("Message",), "Stored Messages", "store_message"),
    )

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("mode") == "Store" or ctx.wanted == {"stored_messages"}:
            return {"stored_messages": await self._store(ctx, params)}
        messages = await self._retrieve(ctx, params)
        outputs: dict[str, Any] = {}
        if "messages_text" in ctx.wanted:
            template = str(params.get("template") or "{sender_name}: {text}")
            text = "\n".join(render(template, False, message_record(m)) for m in messages)
            outputs["messages_text"] = Message(
                text=text, session_id=ctx.run.session_id, flow_id=ctx.run.flow_id
            )
        if "dataframe" in ctx.wanted:
            outputs["dataframe"] = [Data(message_record(m)) for m in messages]
        return outputs

    async def _retrieve(self, ctx: NodeContext, params: Mapping[str, Any]) -> list[Message]:
        limit = int(params.get("n_messages") or 0)
        if limit <= 0:
            return []
        sender_type = params.get("sender_type")
        sender = sender_type if sender_type in ("Machine", "User") else None
        session = str(params.get("session_id") or "")
        other_session = bool(session) and session != ctx.run.session_id
        sender_name = str(params.get("sender_name") or "")
        filtered = bool(sender_name) or other_session
        stored = await ctx.run.memory.history(
            limit=SEARCH_WINDOW if filtered else limit,
            sender=sender,
            order="ASC",
            all_sessions=other_session,
        )
        if other_session:
            stored = [m for m in stored if m.session_id == session]
        if sender_name:
            stored = [m for m in stored if m.sender_name == sender_name]
        stored = stored[-limit:]
        return stored if params.get("order") != "Descending" else list(reversed(stored))

    async def _store(self, ctx: NodeContext, params: Mapping[str, Any]) -> Message:
        value = params.get("message")
        if isinstance(value, Message):
            message = msgspec_copy(value)
        else:
            message = ctx.new_message(
                to_text(value), sender="Machine", sender_name="AI", source_field="message"
            )
        message.session_id = str(
            params.get("session_id") or message.session_id or ctx.run.session_id
        )
        message.context_id = str(params.get("context_id") or message.context_id)
        message.sender = str(params.get("sender") or message.sender or "Machine")
        message.sender_name = str(params.get("sender_name") or message.sender_name or "AI")
        message.flow_id = message.flow_id or ctx.run.flow_id
        await ctx.run.memory.append(message)
        return message


def msgspec_copy(message: Message) -> Message:
    return msgspec.structs.replace(message)


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def rank(query: str, messages: Sequence[Message], top_k: int) -> list[tuple[float, Message]]:
    """The ``top_k`` messages sharing the most (and rarest) terms with ``query``."""
    wanted = set(terms(query))
    if not wanted or top_k <= 0:
        return []
    documents = [Counter(terms(m.text)) for m in messages]
    frequency = Counter(t for doc in documents for t in set(doc) & wanted)
    total = len(documents)
    scored: list[tuple[float, int]] = []
    for index, doc in enumerate(documents):
        score = sum(
            (1 + math.log(doc[t])) * math.log(1 + total / frequency[t]) for t in wanted if doc[t]
        )
        if score > 0:
            scored.append((score, index))
    # Best first; among equals, the most recent first.
    scored.sort(key=lambda item: (-item[0], -item[1]))
    return [(round(score, 4), messages[i]) for score, i in scored[:top_k]]


class MemoryBase(ToolComponent):
    type_name = "MemoryBase"
    display_name = "Memory Base"
    description = "Retrieve memory from the conversations stored for this flow."
    category = "models_and_agents"
    icon = "brain"
    tool_output = "search_results"
    tool_name = "retrieve_memory"
    tool_args = ("search_query",)
    inputs = (
        Input("memory_base", "str", None, "Memory Base"),
        Input(
            "search_query",
            "str",
            "",
            "Search Query",
            "Query used for semantic retrieval against the memory base.",
            input_types=("Message",),
        ),
        Input(
            "top_k", "int", 5, "Top K Results", "Number of top results to return.", advanced=True
        ),
        Input("include_metadata", "bool", True, "Include Metadata", advanced=True),
        Input(
            "filter_by_session",
            "bool",
            True,
            "Filter by Session",
            "Only search the current session; off searches every session of the flow.",
            advanced=True,
        ),
    )
    outputs = (
        Output("search_results", ("Table", "DataFrame"), "Results", "retrieve_memory"),
        COMPONENT_AS_TOOL,
    )

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        query = to_text(params.get("search_query"))
        stored = await ctx.run.memory.history(
            limit=SEARCH_WINDOW, all_sessions=not params.get("filter_by_session", True)
        )
        # The current run's own messages (this very question) are not memories yet.
        past = [m for m in stored if m.run_id != ctx.run.run_id and m.text]
        metadata = bool(params.get("include_metadata", True))
        results = [
            Data({**message_record(m, metadata=metadata), "_score": score}, text_key="text")
            for score, m in rank(query, past, int(params.get("top_k") or 5))
        ]
        return {"search_results": results}
