"""Outbound clients for LLM APIs over httpx, behind one neutral chat model.

``OpenAIClient`` speaks the Chat Completions API (OpenAI and every compatible
server), ``AnthropicClient`` the Messages API. Both take a shared
``httpx.AsyncClient`` and raise only ``UpstreamError``.
"""

from flowserve.providers.anthropic import ANTHROPIC_BASE_URL, AnthropicClient
from flowserve.providers.model import (
    ChatClient,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Chunk,
    ToolCall,
    ToolSpec,
    Usage,
)
from flowserve.providers.openai import OPENAI_BASE_URL, OpenAIClient

__all__ = [
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "AnthropicClient",
    "ChatClient",
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "Chunk",
    "OpenAIClient",
    "ToolCall",
    "ToolSpec",
    "Usage",
]
