"""Schemathesis against the served OpenAPI spec: every operation, a valid admin key.

A bounded run (a few examples per operation) that keeps proving two things for
whatever input the schema allows or nearly allows: the server never answers 5xx,
and every response has a status code the spec documents for that operation, with
a body matching its documented schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import LiveServer

ADMIN_KEY = "fs_fuzz_" + "k" * 40
EXAMPLES_PER_OPERATION = 25
# Streams that stay open until the client leaves: fuzzing them would only time out.
NEVER_ENDING = {
    ("GET", "/api/v1/mcp/sse"),
    ("GET", "/api/v1/mcp/project/{project_id}/sse"),
    ("GET", "/logs-stream"),
}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _checker(
    operation: Any, base_url: str, calls: list[str], mode: GenerationMode
) -> Callable[[], None]:
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(mode))
    def check(case: Any) -> None:
        calls.append(operation.label)
        case.call_and_validate(
            base_url=base_url, headers={"x-api-key": ADMIN_KEY}, checks=CHECKS, timeout=10
        )

    return check


def _summary(error: BaseException) -> str:
    """The failure's headline and its reproducing curl, not pages of schema."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    keep = lines[:3] + [line for line in lines if line.startswith("curl ")]
    return "\n    ".join(keep)[:1500]


def _fuzz(base_url: str, calls: list[str]) -> tuple[list[str], set[str]]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    fuzzed: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in NEVER_ENDING:
            continue
        fuzzed.add(operation.label)
        try:
            for mode in GenerationMode:  # valid inputs, then inputs the schema rejects
                try:
                    _checker(operation, base_url, calls, mode)()
                except hypothesis.errors.Unsatisfiable:
                    # No parameters or body: nothing to make invalid (or valid) here.
                    continue
        # schemathesis' FailureGroup is a BaseExceptionGroup; collect every operation's failures.
        except (Exception, BaseExceptionGroup) as error:
            failures.append(f"{operation.label}: {_summary(error)}")
    return failures, fuzzed


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # keep any .hypothesis/ out of the checkout


async def test_every_operation_survives_schema_fuzzing(
    live_server: Callable[..., LiveServer],
) -> None:
    calls: list[str] = []
    # The log buffer on, so /logs answers its lines rather than Langflow's 501 for "off".
    async with live_server(auth="on", api_key=ADMIN_KEY, log_buffer_size=1000) as server:
        failures, fuzzed = await asyncio.to_thread(_fuzz, server.url, calls)
    assert len(fuzzed) > 40  # the spec was served and read, not skipped
    assert set(calls) == fuzzed  # every operation was actually called
    assert not failures, "\n\n".join(failures)


def _validate(base_url: str, method: str, path: str, **case: Any) -> int:
    """Call one operation with a chosen case; raise unless the response conforms."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    response = (
        schema[path][method]
        .Case(**case)
        .call_and_validate(
            base_url=base_url, headers={"x-api-key": ADMIN_KEY}, checks=CHECKS, timeout=10
        )
    )
    status: int = response.status_code
    return status


# Regressions for what the fuzzing found: responses the spec did not document.
@pytest.mark.parametrize(
    ("method", "path", "case", "status"),
    [
        # Flow headers (no data) were not allowed by the list's documented schema.
        ("GET", "/api/v1/flows/", {"query": {"header_flows": True}}, 200),
        # A bad page size answered an undocumented 422.
        ("GET", "/api/v1/flows/", {"query": {"get_all": False, "size": -5}}, 422),
        # The MCP SDK's 400 for a body that is no JSON-RPC message was undocumented.
        ("POST", "/api/v1/mcp/streamable", {}, 400),
    ],
)
async def test_responses_found_by_fuzzing_are_documented(
    live_server: Callable[..., LiveServer],
    method: str,
    path: str,
    case: dict[str, Any],
    status: int,
) -> None:
    # The log buffer on, so /logs answers its lines rather than Langflow's 501 for "off".
    async with live_server(auth="on", api_key=ADMIN_KEY, log_buffer_size=1000) as server:
        got = await asyncio.to_thread(_validate, server.url, method, path, **case)
    assert got == status


async def test_malformed_json_bodies_get_the_documented_400(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, method in [("/api/v1/flows/", "post"), ("/api/v1/projects/", "post")]:
        assert "400" in spec["paths"][path][method]["responses"]
        response = await client.request(
            method, path, content=b"\xff\xfe{", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["detail"]
