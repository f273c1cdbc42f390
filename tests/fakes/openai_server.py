"""A fake OpenAI-compatible Chat Completions and Embeddings server on a real loopback port.

Deterministic replies (see ``brain``), SSE streaming, tool calls when asked,
injectable failures and configurable latency. Embeddings are a hashed bag of
words (``embed_text``): texts sharing words point the same way, so retrieval
over them ranks as a reader would expect. The benchmark reuses it:
``python -m tests.fakes.openai_server --port 8099 --latency 0.05``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.brain import Reply, Turn, decide, split_tokens
from tests.fakes.garbage import Fault, faulty
from tests.fakes.server import ThreadedServer


class Hold:
    """Holds chat completions unanswered: until ``until`` of them are held at once (then
    all go), or until ``release()``; ``peak`` is the most held at once. The fake serves
    from its own thread and event loop, so the counts are guarded by a lock and
    ``release`` may be called from the test's loop. A request is never held longer than
    ``timeout`` seconds, so a test that cannot reach ``until`` fails on ``peak``
    rather than hanging."""

    def __init__(self, until: int = 0, *, timeout: float = 30.0) -> None:
        self.until = until
        self.timeout = timeout
        self.held = 0
        self.peak = 0
        self.arrived = 0
        self._lock = threading.Lock()
        self._released = False
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def wait(self) -> None:
        with self._lock:
            if self._event is None:
                self._loop, self._event = asyncio.get_running_loop(), asyncio.Event()
            event = self._event
            self.arrived += 1
            self.held += 1
            self.peak = max(self.peak, self.held)
            if self._released or (self.until and self.held >= self.until):
                self._released = True
                event.set()
        try:
            async with asyncio.timeout(self.timeout):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self.held -= 1

    def release(self) -> None:
        with self._lock:
            self._released = True
            if self._event is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._event.set)


class FakeOpenAI:
    def __init__(self, *, latency: float = 0.0, token_latency: float = 0.0) -> None:
        self.latency = latency
        self.token_latency = token_latency
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        # Bodies of the /embeddings requests received, in order.
        self.embedding_requests: list[dict[str, Any]] = []
        self.embedding_headers: list[dict[str, str]] = []
        # While set, /embeddings answers this JSON body instead (answers of the wrong shape).
        self.embedding_answer: Any = None
        # Statuses to answer the next requests with, one each (retry tests).
        self.fail_statuses: list[int] = []
        # While set, every request gets this broken answer (tests/fakes/garbage.py).
        self.fault: Fault | None = None
        self.require_key: str | None = None
        # While set, completions wait on it before answering (tests of calls in flight).
        self.hold: Hold | None = None
        self._seq = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.completions, methods=["POST"]),
                Route("/chat/completions", self.completions, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/embeddings", self.embeddings, methods=["POST"]),
            ]
        )
        self._server: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return self._server.url + "/v1"

    def start(self) -> FakeOpenAI:
        self._server = ThreadedServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        self.requests.clear()
        self.headers.clear()
        self.embedding_requests.clear()
        self.embedding_headers.clear()
        self.embedding_answer = None
        self.fail_statuses.clear()
        self.fault = None
        self.require_key = None
        if self.hold is not None:
            self.hold.release()
        self.hold = None
        self.latency = self.token_latency = 0.0

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.fault is not None:
            fault = self.fault
            return await faulty(fault, bool(body.get("stream")), lambda: self.fault == fault)
        if self.fail_statuses:
            status = self.fail_statuses.pop(0)
            return JSONResponse(
                {"error": {"message": f"injected failure {status}", "type": "server_error"}},
                status_code=status,
            )
        if (
            self.require_key is not None
            and request.headers.get("authorization") != f"Bearer {self.require_key}"
        ):
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            return JSONResponse(
                {
                    "error": {
                        # real providers quote (part of) the key back: the client must redact it
                        "message": f"Incorrect API key provided: {given}",
                        "type": "invalid_request_error",
                    }
                },
                status_code=401,
            )
        if self.hold is not None:
            await self.hold.wait()
        if self.latency:
            await asyncio.sleep(self.latency)
        self._seq += 1
        reply = decide(_turns(body), _tool_names(body), self._seq)
        if body.get("stream"):
            return StreamingResponse(self._stream(body, reply), media_type="text/event-stream")
        return JSONResponse(_completion(body, reply))

    @property
    def prompts(self) -> list[str]:
        """The text of every chat message the fake received, in order."""
        return [
            str(m.get("content") or "") for body in self.requests for m in body.get("messages", [])
        ]

    async def embeddings(self, request: Request) -> Response:
        body = await request.json()
        self.embedding_requests.append(body)
        self.embedding_headers.append(dict(request.headers))
        if self.fault is not None:
            fault = self.fault
            return await faulty(fault, False, lambda: self.fault == fault)
        if self.fail_statuses:
            status = self.fail_statuses.pop(0)
            return JSONResponse({"error": {"message": f"injected failure {status}"}}, status)
        if self.embedding_answer is not None:
            return JSONResponse(self.embedding_answer)
        if self.latency:
            await asyncio.sleep(self.latency)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
        return JSONResponse(
            {
                "object": "list",
                "model": body.get("model", ""),
                "data": [
                    {"object": "embedding", "index": i, "embedding": embed_text(t, dimensions)}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        )

    async def _stream(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[bytes]:
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
        }

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(chunk)}\n\n".encode()

        yield event({"role": "assistant", "content": ""})
        for piece in split_tokens(reply.text) if reply.text else []:
            if self.token_latency:
                await asyncio.sleep(self.token_latency)
            yield event({"content": piece})
        for index, (call_id, name, args) in enumerate(reply.tool_calls):
            raw = json.dumps(args)
            half = len(raw) // 2
            yield event(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": raw[:half]},
                        }
                    ]
                }
            )
            yield event({"tool_calls": [{"index": index, "function": {"arguments": raw[half:]}}]})
        yield event({}, "tool_calls" if reply.tool_calls else "stop")
        usage = {**base, "choices": [], "usage": _usage(reply)}
        yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"


EMBEDDING_DIMENSIONS = 512
_WORD = re.compile(r"[a-z0-9]+")
# Words too common to say what a text is about.
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
        "does",
        "for",
        "from",
        "how",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
    ]
)


def embed_text(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A unit vector counting each word at a position its hash picks; one constant
    component keeps a text without words from being the zero vector."""
    vector = [0.0] * dimensions
    vector[0] = 0.1
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        digest = hashlib.sha256(word.encode()).digest()
        vector[1 + int.from_bytes(digest, "big") % (dimensions - 1)] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def _turns(body: dict[str, Any]) -> list[Turn]:
    names: dict[str, str] = {}
    turns: list[Turn] = []
    for message in body.get("messages", []):
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        turns.append(
            Turn(message["role"], content, names.get(message.get("tool_call_id") or "", ""))
        )
    return turns


def _tool_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for call_id, name, args in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _usage(reply),
    }


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--token-latency", type=float, default=0.0)
    args = parser.parse_args()
    fake = FakeOpenAI(latency=args.latency, token_latency=args.token_latency)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
