"""Outbound clients for LLM APIs over aiohttp, behind one neutral chat model.

``OpenAIClient`` speaks the Chat Completions API (OpenAI and every compatible
server), ``AnthropicClient`` the Messages API, ``EmbeddingsClient`` the OpenAI
Embeddings API. Both take a shared
``aiohttp.ClientSession`` (``new_session``) and raise only ``UpstreamError``.
"""

from flowserve.providers.anthropic import ANTHROPIC_BASE_URL, AnthropicClient
from flowserve.providers.embeddings import EmbeddingsClient
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
from flowserve.providers.transport import new_session

__all__ = [
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "AnthropicClient",
    "ChatClient",
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "Chunk",
    "EmbeddingsClient",
    "OpenAIClient",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "new_session",
]
