"""A fake OpenAI-compatible Chat Completions endpoint with a fixed latency, for the benchmark.

Every answer comes ``--latency`` seconds after the request (default 50 ms), so
whatever a client measures above that is the client's own overhead. Streaming
answers send their first chunk after the same delay, then the rest at once.
The first streamed token is ``@<ns>``: the wall clock (``time.time_ns()``) when
that chunk was handed to the server, so a client on the same machine can tell
how long the token took to reach it from the moment the model sent it.

    python bench/fake_openai.py --port 8099 --latency 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

REPLY = ["Hello", "!", " How", " can", " I", " help", "?"]
_encoder = msgspec.json.Encoder()


def build_app(latency: float) -> Starlette:
    async def completions(request: Request) -> Response:
        body: dict[str, Any] = msgspec.json.decode(await request.body())
        model = str(body.get("model", "gpt-4o-mini"))
        created = int(time.time())
        await asyncio.sleep(latency)
        if body.get("stream"):
            return StreamingResponse(_chunks(model, created), media_type="text/event-stream")
        text = "".join(REPLY)
        return Response(
            _encoder.encode(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
                }
            ),
            media_type="application/json",
        )

    async def _chunks(model: str, created: int) -> AsyncIterator[bytes]:
        for i, token in enumerate(REPLY):
            if i == 0:
                delta = {"role": "assistant", "content": f"@{time.time_ns()}"}
            else:
                delta = {"content": token}
            chunk = {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            yield b"data: " + _encoder.encode(chunk) + b"\n\n"
        done = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }
        yield b"data: " + _encoder.encode(done) + b"\n\ndata: [DONE]\n\n"

    routes = [
        Route(path, completions, methods=["POST"])
        for path in ("/v1/chat/completions", "/chat/completions")
    ]
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.latency),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
