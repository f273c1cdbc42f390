"""A corpus of bad run bodies: each is refused with a clear 4xx before anything runs.

The corpus goes to ``POST /api/v1/run/{flow}`` as a plain and as a streamed run
(``stream=true`` must refuse before its stream starts), on the embedded and the
Postgres + Redis backends; afterwards no message was stored, so no flow ran.
Bodies past ``max_body_bytes`` are refused without being held in memory, with or
without a declared length, and compressed bodies are never inflated. Odd but
valid bodies (empty, NUL characters, strange session ids) keep working as in
Langflow. Prompt templates reach no Python attribute and no environment variable,
whether the template comes from a tweak or a placeholder comes from the input.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from flowserve.runner import MAX_SESSION_ID

PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
RUN = f"/api/v1/run/{PROMPT_ECHO}"
PROMPT_NODE = "Prompt-t2oaK"
JSON = {"content-type": "application/json"}


def _tweaks(value: Any) -> bytes:
    return json.dumps({"input_value": "x", "tweaks": value}).encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# name -> (body, extra headers, allowed statuses, code, a fragment the detail must name)
Case = tuple[bytes, dict[str, str], frozenset[int], str, str]
BAD = frozenset({400})
INVALID = frozenset({422})
CORPUS: dict[str, Case] = {
    "not JSON": (b"input_value=hello", {}, BAD, "malformed_json", "Malformed JSON"),
    "truncated JSON": (b'{"input_value": "x"', {}, BAD, "malformed_json", "Malformed JSON"),
    "not UTF-8": (b'{"input_value": "\xff\xfe"}', {}, BAD, "malformed_json", "UTF-8"),
    "raw NUL byte": (b'{"input_value": "a\x00b"}', {}, BAD, "malformed_json", "Malformed"),
    "form-encoded": (
        b"input_value=x&tweaks=y",
        {"content-type": "application/x-www-form-urlencoded"},
        BAD,
        "malformed_json",
        "Malformed JSON",
    ),
    "top-level array": (b'[{"input_value": "x"}]', {}, INVALID, "invalid", "array"),
    "top-level string": (b'"input_value"', {}, INVALID, "invalid", "str"),
    "top-level number": (b"42", {}, INVALID, "invalid", "int"),
    "top-level null": (b"null", {}, INVALID, "invalid", "null"),
    "deep nesting in tweaks": (
        b'{"tweaks": {"Prompt-t2oaK": {"template": ' + _nested(200_000) + b"}}}",
        {},
        BAD,
        "malformed_json",
        "nested too deeply",
    ),
    "deep nesting in input_value": (
        b'{"input_value": ' + _nested(200_000) + b"}",
        {},
        frozenset({400, 422}),
        "",
        "",
    ),
    "nested tweak value under the parser's limit": (
        b'{"tweaks": {"Prompt-t2oaK": {"template": ' + _nested(900) + b"}}}",
        {},
        INVALID,
        "invalid_tweaks",
        "Prompt-t2oaK.template",
    ),
    "20k tweaks for unknown nodes": (
        _tweaks({f"Ghost-{i}": {"x": i} for i in range(20_000)}),
        {},
        INVALID,
        "invalid_tweaks",
        "and 19990 more",
    ),
    "20k unknown fields of one node": (
        _tweaks({PROMPT_NODE: {f"field{i}": i for i in range(20_000)}}),
        {},
        INVALID,
        "invalid_tweaks",
        "and 19990 more",
    ),
    "a megabyte-long tweak key": (
        _tweaks({"k" * 1_000_000: {"x": 1}}),
        {},
        INVALID,
        "invalid_tweaks",
        "kkk...",
    ),
    "tweak for an unknown node": (
        _tweaks({"Nope-1": {"template": "x"}}),
        {},
        INVALID,
        "invalid_tweaks",
        "Nope-1",
    ),
    "tweak for an unknown field": (
        _tweaks({PROMPT_NODE: {"nope": 1}}),
        {},
        INVALID,
        "invalid_tweaks",
        "nope",
    ),
    "tweak value of the wrong type": (
        _tweaks({PROMPT_NODE: {"template": {"a": 1}}}),
        {},
        INVALID,
        "invalid_tweaks",
        "expected a string",
    ),
    "tweak node given a list": (_tweaks({PROMPT_NODE: []}), {}, INVALID, "invalid_tweaks", ""),
    "tweaks as a list": (b'{"tweaks": [1, 2]}', {}, INVALID, "invalid", "$.tweaks"),
    "tweaks as a string": (b'{"tweaks": "{}"}', {}, INVALID, "invalid", "$.tweaks"),
    "input_type a number": (b'{"input_type": 5}', {}, INVALID, "invalid", "$.input_type"),
    "input_type unknown": (b'{"input_type": "sql"}', {}, INVALID, "invalid", "$.input_type"),
    "output_type a list": (b'{"output_type": []}', {}, INVALID, "invalid", "$.output_type"),
    "input_value an object": (b'{"input_value": {}}', {}, INVALID, "invalid", "$.input_value"),
    "session_id a number": (b'{"session_id": 7}', {}, INVALID, "invalid", "$.session_id"),
    "session_id an object": (b'{"session_id": {}}', {}, INVALID, "invalid", "$.session_id"),
    "session_id too long": (
        json.dumps({"session_id": "s" * (MAX_SESSION_ID + 1)}).encode(),
        {},
        INVALID,
        "invalid",
        "$.session_id",
    ),
    "huge integer": (
        b'{"tweaks": {"Prompt-t2oaK": {"template": ' + b"9" * 100_000 + b"}}}",
        {},
        INVALID,
        "invalid",
        "out of range",
    ),
    "huge float": (b'{"input_value": 1e999}', {}, INVALID, "invalid", "out of range"),
    "gzip-compressed": (
        gzip.compress(b'{"input_value": "x"}'),
        {"content-encoding": "gzip"},
        frozenset({415}),
        "unsupported_encoding",
        "gzip",
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_bad_run_bodies_are_refused_clearly_and_run_nothing(
    backend_client: httpx.AsyncClient, stream: bool
) -> None:
    path = RUN + ("?stream=true" if stream else "")
    wrong: list[str] = []
    for name, (body, headers, statuses, code, fragment) in CORPUS.items():
        response = await backend_client.post(path, content=body, headers={**JSON, **headers})
        answer = response.json() if response.headers["content-type"] == "application/json" else {}
        detail = answer.get("detail")
        if (
            response.status_code not in statuses
            or not isinstance(detail, str)
            or not detail
            or (code and answer.get("code") != code)
            or fragment not in detail
            or len(response.content) > 10_000  # names the problem, does not echo the input
        ):
            wrong.append(f"{name}: {response.status_code} {response.text[:300]}")
    assert not wrong, "\n".join(wrong)
    stored = await backend_client.get("/api/v1/monitor/messages", params={"flow_id": PROMPT_ECHO})
    assert stored.status_code == 200
    assert stored.json() == []  # no run started, so no message was written


def _text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    return text


async def test_odd_but_valid_bodies_run_as_in_langflow(backend_client: httpx.AsyncClient) -> None:
    # An empty body (or only whitespace) is a run with every default.
    for empty in (b"", b"  \n"):
        response = await backend_client.post(RUN, content=empty, headers=JSON)
        assert _text(response) == "You are terse. Question: Hello"
    # NUL characters are valid JSON escapes: they are data and come back unchanged.
    nul = {"input_value": "a\u0000b", "session_id": "s\u0000id"}
    response = await backend_client.post(RUN, json=nul)
    assert _text(response) == "You are terse. Question: a\u0000b"
    assert response.json()["session_id"] == "s\u0000id"
    # Session ids with characters that mean something to Redis, shells, SQL or paths
    # name exactly one session, and its messages are found under that exact id.
    weird = "a:b*?[x]{y}\n\r\t/../%00 ' \" ; DROP TABLE flows; --é😀"
    for session in (weird, "s" * MAX_SESSION_ID):
        response = await backend_client.post(RUN, json={"input_value": "q", "session_id": session})
        assert response.json()["session_id"] == session
        messages = await backend_client.get(
            "/api/v1/monitor/messages", params={"flow_id": PROMPT_ECHO, "session_id": session}
        )
        assert [m["session_id"] for m in messages.json()] == [session, session]
    glob = await backend_client.get(
        "/api/v1/monitor/messages", params={"flow_id": PROMPT_ECHO, "session_id": "a:b*"}
    )
    assert glob.json() == []  # a pattern character is not a pattern
    # JSON labelled as text is still read as JSON (Langflow's FastAPI would answer 422;
    # accepting it breaks no client).
    plain = await backend_client.post(
        RUN, content=b'{"input_value": "t"}', headers={"content-type": "text/plain"}
    )
    assert _text(plain) == "You are terse. Question: t"


# --- bodies past the size limit --------------------------------------------------------------

LIMIT = 1024 * 1024
HUGE = 50 * 1024 * 1024


async def _chunks(
    total: int, chunk: bytes = b'{"input_value": "' + b"x" * 65_519
) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


async def _post_huge(url: str, *, declared: bool) -> tuple[httpx.Response, int]:
    """POST a 50 MB body: the answer, and the peak memory this process traced meanwhile."""
    headers = {**JSON, "content-length": str(HUGE)} if declared else JSON
    tracemalloc.start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.post(url, content=_chunks(HUGE), headers=headers)
        return response, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    "path",
    [RUN, RUN + "?stream=true", "/api/v1/webhook/9b2f1d7e-5c4a-4e8b-8f31-6a0d2c9e7b55"],
    ids=["run", "stream", "webhook"],
)
async def test_body_past_the_limit_is_413_without_being_held(
    live_server: Callable[..., Any], declared: bool, path: str
) -> None:
    async with live_server(max_body_bytes=LIMIT) as server:
        response, peak = await _post_huge(server.url + path, declared=declared)
        # The server is fine afterwards.
        async with httpx.AsyncClient() as http:
            after = await http.post(server.url + RUN, json={"input_value": "ok"})
    assert response.status_code == 413
    assert response.json()["detail"] == f"Request body exceeds the limit of {LIMIT} bytes"
    assert after.status_code == 200
    # Client and server share this process: at most the limit (and buffers) was held,
    # never the 50 MB body.
    assert peak < 4 * LIMIT, f"peak {peak / 1e6:.1f} MB"


async def test_gzip_bomb_is_refused_unread(live_server: Callable[..., Any]) -> None:
    bomb = gzip.compress(b'{"input_value": "' + b" " * HUGE + b'"}', compresslevel=9)
    assert len(bomb) < LIMIT  # small enough to pass the size limit...
    async with live_server(max_body_bytes=LIMIT) as server, httpx.AsyncClient() as http:
        tracemalloc.start()
        try:
            response = await http.post(
                server.url + RUN, content=bomb, headers={**JSON, "content-encoding": "gzip"}
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_encoding"
    assert "send the body uncompressed" in response.json()["detail"]
    assert peak < 4 * LIMIT  # ...and never inflated to its 50 MB


# --- prompt templates ------------------------------------------------------------------------

ATTACKS = (
    "{question.__class__.__mro__}",
    "{question.__init__.__globals__}",
    "{0.__globals__}",
    "{os.environ}",
    "{question!r}",
    "{question[0]}",
    "{question:>999999999}",
    "{__import__('os').environ}",
    "{self.__dict__}",
)


async def test_prompt_templates_reach_no_attribute_or_environment(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTILE_TEMPLATE_SECRET", "s3cr3t-value")
    template = "|".join(ATTACKS) + "|{question}"
    response = await client.post(
        RUN, json={"input_value": "q", "tweaks": {PROMPT_NODE: {"template": template}}}
    )
    # Every attack stays literal text; only the plain placeholder is filled in.
    assert _text(response) == "|".join(ATTACKS) + "|q"
    double = "{{ question.__class__ }} {{os.environ}} {{ question }}"
    response = await client.post(
        RUN,
        json={
            "input_value": "q",
            "tweaks": {PROMPT_NODE: {"template": double, "use_double_brackets": True}},
        },
    )
    assert _text(response) == "{{ question.__class__ }} {{os.environ}} q"
    # A placeholder's value is never itself rendered: input that looks like a template
    # comes out as typed.
    response = await client.post(RUN, json={"input_value": "{os.environ} {question.__class__}"})
    assert _text(response) == "You are terse. Question: {os.environ} {question.__class__}"
    assert "s3cr3t-value" not in response.text
