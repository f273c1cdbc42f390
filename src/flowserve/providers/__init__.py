"""Outbound clients for LLM APIs over one lean HTTP/1.1 pool, behind one neutral chat model.

``OpenAIClient`` speaks the Chat Completions API (OpenAI and every compatible
server), ``AnthropicClient`` the Messages API, ``EmbeddingsClient`` the OpenAI
Embeddings API. Both take a shared
connection ``Pool`` (``new_session``) and raise only ``UpstreamError`` (or
``PoolExhausted`` when the pool stays full).
"""

from flowserve.providers.anthropic import ANTHROPIC_BASE_URL, AnthropicClient
from flowserve.providers.embeddings import EmbeddingsClient
from flowserve.providers.http1 import Pool
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
    "Pool",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "new_session",
]
