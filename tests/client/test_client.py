"""flowserve.client against a live server: runs, streams, errors with detail, retries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowserve.client import (
    APIError,
    AsyncClient,
    Client,
    EndEvent,
    ErrorEvent,
    FlowNotFound,
    InvalidTweaks,
    MessageEvent,
    RateLimited,
    RetryPolicy,
    RunResult,
    TokenEvent,
    TransportError,
    Unavailable,
)
from flowserve.components import BUILTIN, build_registry
from flowserve.engine import Component, Input, NodeContext, Output
from flowserve.engine.types import Message
from tests.conftest import RESPONSES, LiveServer
from tests.helpers import Gate, edge, flow, make_registry, node

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"


async def test_run_flow_returns_the_answer_and_langflows_raw_outputs(live_server: Any) -> None:
    async with live_server() as server, AsyncClient(server.url) as client:
        result = await client.run_flow("prompt-echo", "what is 2+2?")
        raw = (
            await client._http.post("/api/v1/run/prompt-echo", json={"input_value": "what is 2+2?"})
        ).json()
    assert isinstance(result, RunResult)
    assert result.output == "You are terse. Question: what is 2+2?"
    assert result.session_id == PROMPT_ECHO
    assert result.outputs[0]["outputs"][0]["results"]["message"]["text"] == result.output
    assert result.outputs[0]["outputs"][0].keys() == raw["outputs"][0]["outputs"][0].keys()
    assert result.metadata["run_id"]


async def test_sync_client_runs_with_tweaks_and_session(live_server: Any) -> None:
    async with live_server() as server:

        def call() -> RunResult:
            with Client(server.url) as client:
                return client.run_flow(
                    PROMPT_ECHO,
                    "x",
                    tweaks={"Prompt-t2oaK": {"template": "Tweaked: {question}"}},
                    session_id="my-session",
                )

        result = await asyncio.to_thread(call)
    assert result.output == "Tweaked: x"
    assert result.session_id == "my-session"


async def test_text_input_type_reaches_text_inputs(live_server: Any) -> None:
    async with live_server() as server, AsyncClient(server.url) as client:
        as_chat = await client.run_flow(HELLO, "hi")
        as_text = await client.run_flow(HELLO, "hi", input_type="text")
    assert as_chat.output == "Hello, World!"
    assert as_text.output == "hi"


async def test_result_reads_a_real_langflow_answer() -> None:
    body = json.loads((RESPONSES / "hello-world.run.json").read_text())
    result = RunResult.from_body(body)
    assert result.output == "Hello, World!"
    assert result.session_id == HELLO
    # Langflow sends no metadata: an empty mapping, not an error.
    assert result.metadata == {}


async def test_unknown_flow_raises_flow_not_found_with_the_servers_detail(
    live_server: Any,
) -> None:
    async with live_server() as server, AsyncClient(server.url) as client:
        with pytest.raises(FlowNotFound) as caught:
            await client.run_flow("no-such-flow", "hi")
    error = caught.value
    assert error.status == 404
    assert error.code == "flow_not_found"
    assert error.detail == "Flow identifier no-such-flow not found"
    assert error.request_id


async def test_bad_tweak_raises_invalid_tweaks_naming_the_field(live_server: Any) -> None:
    async with live_server() as server:

        def call() -> None:
            with Client(server.url) as client:
                client.run_flow(PROMPT_ECHO, "x", tweaks={"Prompt-t2oaK": {"nope": 1}})

        with pytest.raises(InvalidTweaks) as caught:
            await asyncio.to_thread(call)
    assert caught.value.status == 422
    assert "nope" in caught.value.detail


async def test_stream_yields_messages_then_the_end_result(live_server: Any) -> None:
    async with live_server() as server, AsyncClient(server.url) as client:
        events = [e async for e in client.stream_flow("prompt-echo", "what is 2+2?")]
    assert isinstance(events[0], MessageEvent)
    assert events[0].sender == "User"
    assert events[0].text == "what is 2+2?"
    assert isinstance(events[-1], EndEvent)
    assert events[-1].result.output == "You are terse. Question: what is 2+2?"
    answers = [e for e in events if isinstance(e, MessageEvent) and e.sender == "Machine"]
    assert answers[0].text == events[-1].result.output


async def test_stream_delivers_events_while_the_run_is_still_going(
    live_server: Any, flows_dir: Path
) -> None:
    Gate.reset()
    gated = flow(
        "gated",
        [
            node("ChatInput-a", "ChatInput", input_value=""),
            node("TestGate-b", "TestGate", gate="client"),
            node("ChatOutput-c", "ChatOutput"),
        ],
        [
            edge("ChatInput-a", "message", "TestGate-b", "input_value"),
            edge("TestGate-b", "text", "ChatOutput-c", "input_value"),
        ],
    )
    (flows_dir / "gated.json").write_text(json.dumps(gated))
    async with live_server(registry=make_registry()) as server, AsyncClient(server.url) as client:
        stream = client.stream_flow("gated", "hello")
        first = await anext(stream)
        assert isinstance(first, MessageEvent)
        assert not Gate.gates["client"].is_set()
        Gate.gates["client"].set()
        rest = [event async for event in stream]
    assert isinstance(rest[-1], EndEvent)
    assert rest[-1].result.output == "hello"


async def test_sync_stream_reports_a_failed_component_as_error_event(
    live_server: Any, flows_dir: Path
) -> None:
    broken = flow(
        "broken",
        [node("ChatInput-a", "ChatInput"), node("TestBoom-b", "TestBoom")],
        [edge("ChatInput-a", "message", "TestBoom-b", "input_value")],
    )
    (flows_dir / "broken.json").write_text(json.dumps(broken))
    async with live_server(registry=make_registry()) as server:

        def call() -> list[Any]:
            with Client(server.url) as client:
                return list(client.stream_flow("broken", "hi"))

        events = await asyncio.to_thread(call)
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].code == "run_failed"
    assert "the component blew up" in events[-1].detail


async def test_stream_of_unknown_flow_raises_before_any_event(live_server: Any) -> None:
    async with live_server() as server, AsyncClient(server.url) as client:
        stream = client.stream_flow("missing", "hi")
        with pytest.raises(FlowNotFound):
            await anext(stream)


async def test_unreachable_server_raises_transport_error() -> None:
    policy = RetryPolicy(max_retries=1, backoff=0.01)
    # Port 9 (discard) on loopback is closed: the connection is refused.
    async with AsyncClient("http://127.0.0.1:9", retry=policy) as client:
        with pytest.raises(TransportError, match="cannot connect"):
            await client.run_flow("any", "hi")


class Tokens(Component):
    """Streams its input word by word as token events, as a model would."""

    type_name = "TestTokens"
    display_name = "Tokens"
    inputs = (Input("input_value", "any", ""),)
    outputs = (Output("text", ("Message",)),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        text = str(params.get("input_value") or "")
        for word in text.split(" "):
            ctx.run.sink.emit("token", {"chunk": word + " ", "id": ctx.node_id})
            await asyncio.sleep(0)
        return {"text": Message(text=text + " ")}


async def test_token_events_arrive_over_the_socket_and_join_to_the_answer(
    live_server: Any, flows_dir: Path
) -> None:
    tokens = flow(
        "tokens",
        [
            node("ChatInput-a", "ChatInput", input_value=""),
            node("TestTokens-b", "TestTokens"),
            node("ChatOutput-c", "ChatOutput"),
        ],
        [
            edge("ChatInput-a", "message", "TestTokens-b", "input_value"),
            edge("TestTokens-b", "text", "ChatOutput-c", "input_value"),
        ],
    )
    (flows_dir / "tokens.json").write_text(json.dumps(tokens))
    registry = build_registry((*BUILTIN, Tokens), plugins=False)
    async with live_server(registry=registry) as server, AsyncClient(server.url) as client:
        events = [e async for e in client.stream_flow("tokens", "one two three")]
    chunks = [e.chunk for e in events if isinstance(e, TokenEvent)]
    assert chunks == ["one ", "two ", "three "]
    assert isinstance(events[-1], EndEvent)
    assert "".join(chunks) == events[-1].result.output


# --- retries, against a small scripted server ---------------------------------------


class Script:
    """Answers queued (status, headers, body) in order, then 200 with a run result."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        self.answers = answers
        self.seen: list[float] = []

    async def run(self, request: Request) -> Response:
        self.seen.append(time.monotonic())
        if self.answers:
            status, headers, body = self.answers.pop(0)
            return JSONResponse(body, status_code=status, headers=headers)
        body = json.loads((RESPONSES / "hello-world.run.json").read_text())
        return JSONResponse(body)


def scripted(script: Script) -> LiveServer:
    app = Starlette(routes=[Route("/api/v1/run/{flow}", script.run, methods=["POST"])])
    return LiveServer(app)


async def test_503_is_retried_honouring_retry_after() -> None:
    script = Script([(503, {"Retry-After": "1"}, {"detail": "busy", "code": "unavailable"})])
    async with scripted(script) as server, AsyncClient(server.url) as client:
        result = await client.run_flow("f", "hi")
    assert result.output == "Hello, World!"
    assert len(script.seen) == 2
    assert script.seen[1] - script.seen[0] >= 1.0


async def test_429_is_retried_with_an_http_date_retry_after_in_the_sync_client() -> None:
    soon = formatdate(time.time() + 1, usegmt=True)
    script = Script(
        [
            (429, {"Retry-After": soon}, {"detail": "slow down", "code": "rate_limited"}),
            (429, {}, {"detail": "slow down", "code": "rate_limited"}),
        ]
    )
    async with scripted(script) as server:

        def call() -> RunResult:
            with Client(server.url, retry=RetryPolicy(backoff=0.05)) as client:
                return client.run_flow("f", "hi")

        result = await asyncio.to_thread(call)
    assert result.output == "Hello, World!"
    assert len(script.seen) == 3


async def test_retries_give_up_with_the_servers_error() -> None:
    busy = (503, {"Retry-After": "0"}, {"detail": "store down", "code": "unavailable"})
    script = Script([busy, busy, busy])
    policy = RetryPolicy(max_retries=2)
    async with scripted(script) as server, AsyncClient(server.url, retry=policy) as client:
        with pytest.raises(Unavailable) as caught:
            await client.run_flow("f", "hi")
    assert caught.value.detail == "store down"
    assert caught.value.status == 503
    assert len(script.seen) == 3


async def test_a_retry_after_beyond_the_limit_is_not_waited_for() -> None:
    script = Script([(429, {"Retry-After": "3600"}, {"detail": "quota exhausted"})])
    async with scripted(script) as server, AsyncClient(server.url) as client:
        with pytest.raises(RateLimited) as caught:
            await client.run_flow("f", "hi")
    assert caught.value.detail == "quota exhausted"
    # Langflow sends no code: the status picks the class and its default code.
    assert caught.value.code == "rate_limited"
    assert caught.value.headers["retry-after"] == "3600"
    assert len(script.seen) == 1


async def test_langflow_validation_errors_keep_their_detail_list() -> None:
    detail = [{"loc": ["body", "input_value"], "msg": "Input should be a valid string"}]
    script = Script([(422, {}, {"detail": detail})])
    async with scripted(script) as server, AsyncClient(server.url) as client:
        with pytest.raises(APIError) as caught:
            await client.run_flow("f", "hi")
    assert caught.value.status == 422
    assert "Input should be a valid string" in caught.value.detail
    assert caught.value.body == {"detail": detail}


async def test_api_key_and_run_variables_are_sent_as_langflows_headers() -> None:
    received: list[tuple[str | None, str | None]] = []

    async def echo(request: Request) -> Response:
        received.append(
            (
                request.headers.get("x-api-key"),
                request.headers.get("x-langflow-global-var-openai_api_key"),
            )
        )
        return JSONResponse(json.loads((RESPONSES / "hello-world.run.json").read_text()))

    app = Starlette(routes=[Route("/api/v1/run/{flow}", echo, methods=["POST"])])
    async with LiveServer(app) as server, AsyncClient(server.url, api_key="sk-test") as client:
        await client.run_flow("f")
        await client.run_flow("f", variables={"OPENAI_API_KEY": "sk-provider"})
    assert received == [("sk-test", None), ("sk-test", "sk-provider")]
