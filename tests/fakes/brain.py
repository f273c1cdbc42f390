"""The deterministic "model" behind the fake providers.

Replies echo what was received so tests can see what the client sent:

* the last message is a tool result -> ``Tool <name> said: <result>``
* tools are offered and the last user message has a line
  ``TOOL <name> <json args>`` -> a call of that tool with those args
  (an unknown tool name is still called: the client must cope)
* otherwise -> ``Echo: <last user text>``

Token usage counts words: every message's words in, the reply's words out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOOL_LINE = re.compile(r"^TOOL\s+(\S+)\s*(.*)$", re.MULTILINE)


@dataclass
class Turn:
    role: str
    text: str
    tool_name: str = ""


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


def decide(turns: list[Turn], tool_names: list[str], call_seq: int) -> Reply:
    input_tokens = sum(len(t.text.split()) for t in turns)
    last = turns[-1] if turns else Turn("user", "")
    if last.role == "tool":
        text = f"Tool {last.tool_name} said: {last.text}"
        return Reply(text=text, input_tokens=input_tokens, output_tokens=len(text.split()))
    last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
    match = _TOOL_LINE.search(last_user) if tool_names else None
    if match:
        raw_args = match.group(2).strip()
        try:
            args = json.loads(raw_args) if raw_args else {}
        except json.JSONDecodeError:
            args = {"input": raw_args}
        call = (f"call_{call_seq}", match.group(1), args if isinstance(args, dict) else {})
        return Reply(tool_calls=[call], input_tokens=input_tokens, output_tokens=3)
    text = f"Echo: {last_user}"
    return Reply(text=text, input_tokens=input_tokens, output_tokens=len(text.split()))


def split_tokens(text: str) -> list[str]:
    """Word-ish chunks that join back to ``text`` exactly."""
    return re.findall(r"\S+\s*|\s+", text) or [""]
