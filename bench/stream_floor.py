"""The floor of a streamed LLM run on flowserve's stack, with no flow at all.

A bare ASGI app on uvicorn (uvloop, httptools) that, per request, does what any
server streaming a model's answer must: read the body, send an event the size of
Langflow's first ``add_message``, open the model's stream through flowserve's own
provider pool (``providers/http1.py``) and parse it with its ``SseParser``, send
each chunk's text as a ``token`` event as it comes, and end with two more
message-sized events. No engine, components, stores, auth, middleware or logs.

Its CPU per run, beside flowserve's in the ``conc`` rows of ``bench/run.py``,
tells how much of a streamed run's cost is the server stack and the writes, and
so how far the rest could ever be cut on one core.

    FLOOR_MODEL_URL=http://127.0.0.1:8099/v1/chat/completions \\
        uvicorn bench.stream_floor:app --port 8002
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from flowserve.providers.http1 import Pool
from flowserve.providers.transport import SseParser

MODEL_URL = os.environ.get("FLOOR_MODEL_URL", "http://127.0.0.1:8099/v1/chat/completions")
_encoder = msgspec.json.Encoder()
REQUEST = _encoder.encode(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
    }
)
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Authorization": "Bearer sk-bench",
}
# About the size of flowserve's add_message events (a message, twice over).
MESSAGE = _encoder.encode({"event": "add_message", "data": {"text": "x" * 1500}}) + b"\n\n"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
}

pool = Pool(size=8192)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await pool.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send(START)
    await send({"type": "http.response.body", "body": MESSAGE, "more_body": True})
    answer = await pool.open(MODEL_URL, HEADERS, REQUEST, connect_timeout=5, read_timeout=30)
    parser = SseParser("openai")
    try:
        async for chunk in answer.chunks():
            for _event, data in parser.feed(chunk):
                if data == "[DONE]":
                    continue
                text = msgspec.json.decode(data)["choices"][0]["delta"].get("content") or ""
                token = {"event": "token", "data": {"chunk": text, "id": "floor"}}
                body = _encoder.encode(token) + b"\n\n"
                await send({"type": "http.response.body", "body": body, "more_body": True})
    finally:
        pool.release(answer)
    await send({"type": "http.response.body", "body": MESSAGE + MESSAGE, "more_body": False})
