"""A Python client for flowserve, and for Langflow servers on the endpoints they share.

    from flowserve.client import Client

    with Client("http://127.0.0.1:7860", api_key="...") as client:
        result = client.run_flow("my-flow", "What is 2+2?", tweaks={...})
        print(result.output)
        for event in client.stream_flow("my-flow", "Tell me a story"):
            if isinstance(event, TokenEvent):
                print(event.chunk, end="")

``AsyncClient`` offers the same calls to be awaited. Errors the server answers
raise the ``APIError`` subclass that mirrors the server's (``FlowNotFound``,
``InvalidTweaks``, ...) with its ``status``, ``code`` and ``detail``.
"""

from flowserve.client._client import DEFAULT_BASE_URL, AsyncClient, Client, RetryPolicy
from flowserve.client._exceptions import (
    APIError,
    BadRequest,
    ClientError,
    Conflict,
    EndpointNameTaken,
    FlowNotFound,
    Forbidden,
    Invalid,
    InvalidFlow,
    InvalidRunInput,
    InvalidTweaks,
    JobError,
    JobFailed,
    JobNotFound,
    JobTimeout,
    MalformedJSON,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RunFailed,
    RunTimeout,
    ServerError,
    SessionNotFound,
    StreamError,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedComponent,
    UpstreamError,
)
from flowserve.client._models import (
    EndEvent,
    ErrorEvent,
    Event,
    EventParser,
    FlowInfo,
    Job,
    MessageEvent,
    RunResult,
    Snippets,
    StreamEvent,
    TokenEvent,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "EndEvent",
    "EndpointNameTaken",
    "ErrorEvent",
    "Event",
    "EventParser",
    "FlowInfo",
    "FlowNotFound",
    "Forbidden",
    "Invalid",
    "InvalidFlow",
    "InvalidRunInput",
    "InvalidTweaks",
    "Job",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "JobTimeout",
    "MalformedJSON",
    "MessageEvent",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RetryPolicy",
    "RunFailed",
    "RunResult",
    "RunTimeout",
    "ServerError",
    "SessionNotFound",
    "Snippets",
    "StreamError",
    "StreamEvent",
    "TokenEvent",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedComponent",
    "UpstreamError",
]
