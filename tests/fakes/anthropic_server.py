"""A fake Anthropic Messages API server on a real loopback port (see ``brain``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.brain import Reply, Turn, decide, split_tokens
from tests.fakes.garbage import Fault, faulty
from tests.fakes.server import ThreadedServer


class FakeAnthropic:
    def __init__(self, *, latency: float = 0.0, token_latency: float = 0.0) -> None:
        self.latency = latency
        self.token_latency = token_latency
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_statuses: list[int] = []
        # While set, every request gets this broken answer (tests/fakes/garbage.py).
        self.fault: Fault | None = None
        self._seq = 0
        self.app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])
        self._server: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return self._server.url

    def start(self) -> FakeAnthropic:
        self._server = ThreadedServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        self.requests.clear()
        self.headers.clear()
        self.fail_statuses.clear()
        self.fault = None
        self.latency = self.token_latency = 0.0

    async def messages(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.fault is not None:
            fault = self.fault
            return await faulty(fault, bool(body.get("stream")), lambda: self.fault == fault)
        if self.fail_statuses:
            status = self.fail_statuses.pop(0)
            return JSONResponse(
                {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": f"injected failure {status}"},
                },
                status_code=status,
            )
        if "max_tokens" not in body:
            return JSONResponse(
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "max_tokens: Field required",
                    },
                },
                status_code=400,
            )
        if self.latency:
            await asyncio.sleep(self.latency)
        self._seq += 1
        reply = decide(_turns(body), [t["name"] for t in body.get("tools") or []], self._seq)
        if body.get("stream"):
            return StreamingResponse(self._stream(body, reply), media_type="text/event-stream")
        return JSONResponse(_message(body, reply))

    async def _stream(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[bytes]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        start = _message(body, reply)
        start.update(
            content=[],
            stop_reason=None,
            usage={"input_tokens": reply.input_tokens, "output_tokens": 1},
        )
        yield event("message_start", {"message": start})
        yield event("ping", {})
        index = 0
        if reply.text:
            yield event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for piece in split_tokens(reply.text):
                if self.token_latency:
                    await asyncio.sleep(self.token_latency)
                yield event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
            yield event("content_block_stop", {"index": 0})
            index = 1
        for offset, (call_id, name, args) in enumerate(reply.tool_calls):
            at = index + offset
            yield event(
                "content_block_start",
                {
                    "index": at,
                    "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
                },
            )
            raw = json.dumps(args)
            for part in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                yield event(
                    "content_block_delta",
                    {"index": at, "delta": {"type": "input_json_delta", "partial_json": part}},
                )
            yield event("content_block_stop", {"index": at})
        yield event(
            "message_delta",
            {
                "delta": {"stop_reason": "tool_use" if reply.tool_calls else "end_turn"},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
        yield event("message_stop", {})


def _turns(body: dict[str, Any]) -> list[Turn]:
    names: dict[str, str] = {}
    turns: list[Turn] = []
    if body.get("system"):
        turns.append(Turn("system", body["system"]))
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            turns.append(Turn(message["role"], content))
            continue
        for block in content or []:
            if block["type"] == "text":
                turns.append(Turn(message["role"], block["text"]))
            elif block["type"] == "tool_use":
                names[block["id"]] = block["name"]
            elif block["type"] == "tool_result":
                turns.append(
                    Turn("tool", str(block.get("content", "")), names.get(block["tool_use_id"], ""))
                )
    return turns


def _message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    content.extend(
        {"type": "tool_use", "id": call_id, "name": name, "input": args}
        for call_id, name, args in reply.tool_calls
    )
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": content,
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }
