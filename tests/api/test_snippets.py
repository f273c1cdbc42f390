"""Snippets and export: every snippet runs as printed against a live server.

curl runs with the real curl, the Python snippets with this virtualenv's
python, the JavaScript one with node (when installed); each answer is
compared with a direct run of the same flow.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import flowserve
from flowserve.app import create_app
from flowserve.client import AsyncClient, RunResult
from flowserve.settings import Settings
from tests.conftest import FLOWS, _serve_in_lifespan

HELLO = "44d4caa3-488a-4d5d-9a1d-20af07107439"
PROMPT_ECHO = "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
TRICKY = 'it\'s "quoted" $HOME `id` \\ back\\slash ünïcödé 😀\nsecond line'
NODE = shutil.which("node")
CURL = shutil.which("curl")


async def run_process(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "LANGFLOW_API_KEY": "unused-with-auth-off", "PYTHONIOENCODING": "utf-8"}
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def snippets_for(http: httpx.AsyncClient, url: str, flow: str, **params: str) -> Any:
    response = await http.get(f"{url}/api/v1/flows/{flow}/snippets", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def direct_run(url: str, snippets: dict[str, Any], input_value: str) -> RunResult:
    async with AsyncClient(url) as client:
        return await client.run_flow(
            snippets["flow_id"],
            input_value,
            tweaks=snippets["tweaks"] or None,
            input_type=snippets["input_type"],
            output_type=snippets["output_type"],
        )


CASES = [("prompt-echo", "hello world!"), (HELLO, "hello world!"), ("prompt-echo", TRICKY)]


@pytest.mark.parametrize(("flow", "input_value"), CASES)
async def test_every_snippet_runs_as_printed_and_answers_like_a_direct_run(
    live_server: Any, tmp_path: Path, flow: str, input_value: str
) -> None:
    async with live_server() as server, httpx.AsyncClient() as http:
        snippets = await snippets_for(http, server.url, flow, input_value=input_value)
        expected = await direct_run(server.url, snippets, input_value)

        assert CURL is not None, "curl is needed to check the curl snippet"
        code, out, err = await run_process("bash", "-c", snippets["curl"])
        assert code == 0, err
        assert RunResult.from_body(json.loads(out)).output == expected.output

        for name in ("python_requests", "python_client"):
            script = tmp_path / f"{name}.py"
            script.write_text(snippets[name], encoding="utf-8")
            code, out, err = await run_process(sys.executable, str(script))
            assert code == 0, f"{name}: {err}"
            assert out.removesuffix("\n") == expected.output, name

        if NODE is not None:
            script = tmp_path / "snippet.mjs"
            script.write_text(snippets["javascript"], encoding="utf-8")
            code, out, err = await run_process(NODE, str(script))
            assert code == 0, err
            assert out.removesuffix("\n") == expected.output
    # The input reached the flow: both flows echo it.
    assert input_value in expected.output


async def test_snippets_use_the_endpoint_name_and_the_flows_tweakable_fields(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get(f"/api/v1/flows/{PROMPT_ECHO}/snippets")).json()
    assert body["url"] == "http://flowserve/api/v1/run/prompt-echo"
    assert body["input_type"] == "chat"
    # The prompt's template is overridable; the question is fed by an edge, the
    # chat input by input_value, and advanced fields are left out.
    assert body["tweaks"] == {"Prompt-t2oaK": {"template": "You are terse. Question: {question}"}}
    assert '"Prompt-t2oaK"' in body["curl"]
    assert "x-api-key" in body["curl"]
    assert "x-api-key" in body["python_requests"]
    assert "x-api-key" in body["javascript"]


async def test_a_text_input_flow_is_run_by_id_with_input_type_text(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get(f"/api/v1/flows/{HELLO}/snippets")).json()
    assert body["url"] == f"http://flowserve/api/v1/run/{HELLO}"
    assert body["input_type"] == "text"
    assert body["tweaks"] == {}


async def test_snippets_are_built_from_the_configured_public_url(settings: Settings) -> None:
    app = create_app(settings.replace(public_url="https://flows.example.com/team/"))
    async for http in _serve_in_lifespan(app):
        body = (await http.get("/api/v1/flows/prompt-echo/snippets")).json()
    assert body["url"] == "https://flows.example.com/team/api/v1/run/prompt-echo"
    assert 'Client("https://flows.example.com/team"' in body["python_client"]


SECRET_FLOW = {
    "id": "9b0f7f0e-0000-4000-8000-000000000001",
    "name": "Secret holder",
    "endpoint_name": "secret-holder",
    "data": {
        "nodes": [
            {
                "id": "TextInput-s1",
                "data": {
                    "id": "TextInput-s1",
                    "type": "TextInput",
                    "node": {
                        "display_name": "Text Input",
                        "template": {
                            "input_value": {"type": "str", "value": "hi", "show": True},
                            "api_key": {
                                "type": "str",
                                "value": "sk-very-secret",
                                "password": True,
                                "show": True,
                            },
                            "region": {
                                "type": "str",
                                "value": "MY_REGION",
                                "load_from_db": True,
                                "show": True,
                            },
                            "label": {"type": "str", "value": "plain", "show": True},
                        },
                    },
                },
            },
            {
                "id": "ChatOutput-s2",
                "data": {
                    "id": "ChatOutput-s2",
                    "type": "ChatOutput",
                    "node": {"display_name": "Chat Output", "template": {}},
                },
            },
        ],
        "edges": [
            {
                "source": "TextInput-s1",
                "target": "ChatOutput-s2",
                "data": {
                    "sourceHandle": {"id": "TextInput-s1", "name": "text"},
                    "targetHandle": {"id": "ChatOutput-s2", "fieldName": "input_value"},
                },
            }
        ],
    },
}


async def test_secrets_and_global_variable_fields_never_reach_snippets_or_exports(
    live_server: Any, flows_dir: Path
) -> None:
    (flows_dir / "secret.json").write_text(json.dumps(SECRET_FLOW))
    async with live_server() as server, httpx.AsyncClient() as http:
        snippets = await http.get(f"{server.url}/api/v1/flows/secret-holder/snippets")
        exported = await http.get(f"{server.url}/api/v1/flows/secret-holder/export")
        script = await http.get(
            f"{server.url}/api/v1/flows/secret-holder/export", params={"format": "python"}
        )
    assert snippets.json()["tweaks"] == {"TextInput-s1": {"label": "plain"}}
    for response in (snippets, exported, script):
        assert "sk-very-secret" not in response.text
    template = exported.json()["data"]["nodes"][0]["data"]["node"]["template"]
    assert template["api_key"]["value"] == ""
    assert template["region"]["value"] == "MY_REGION"


async def test_unknown_flow_and_bad_format_are_refused_with_detail(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/api/v1/flows/nope/snippets")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Flow identifier nope not found"
    bad = await client.get("/api/v1/flows/prompt-echo/export", params={"format": "yaml"})
    assert bad.status_code == 422
    assert "format must be 'json' or 'python'" in bad.json()["detail"]
    exported = await client.get("/api/v1/flows/nope/export")
    assert exported.status_code == 404


async def test_json_export_is_the_langflow_document_and_runs_the_same(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/api/v1/flows/{PROMPT_ECHO}/export", params={"format": "json"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="prompt-echo.json"'
    document = response.json()
    original = json.loads((FLOWS / "prompt-echo.json").read_text())
    assert document["data"] == original["data"]
    assert (document["id"], document["name"]) == (original["id"], original["name"])
    assert document["endpoint_name"] == "prompt-echo"
    served = await client.post("/api/v1/run/prompt-echo", json={"input_value": "2+2?"})
    embedded = await flowserve.arun_flow(document, "2+2?")
    served_text = served.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert embedded.output == served_text


@pytest.mark.parametrize("flow", ["prompt-echo", HELLO])
async def test_python_export_runs_the_flow_in_its_own_process(
    live_server: Any, tmp_path: Path, flow: str
) -> None:
    async with live_server() as server, httpx.AsyncClient() as http:
        response = await http.get(
            f"{server.url}/api/v1/flows/{flow}/export", params={"format": "python"}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/x-python")
        snippets = await snippets_for(http, server.url, flow)
        expected = await direct_run(server.url, snippets, "what is 2+2?")
    script = tmp_path / "exported.py"
    script.write_text(response.text, encoding="utf-8")
    # Run from an empty directory, with the server gone: the script needs neither.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    code, out, err = await run_process(sys.executable, str(script), "what is 2+2?", cwd=workdir)
    assert code == 0, err
    assert out.removesuffix("\n") == expected.output
    code, out, err = await run_process(
        sys.executable, str(script), "--json", "what is 2+2?", cwd=workdir
    )
    assert code == 0, err
    assert RunResult.from_body(json.loads(out)).output == expected.output


async def test_cli_prints_the_same_snippets_from_a_file_or_from_the_server(
    live_server: Any,
) -> None:
    flowserve_bin = str(Path(sys.executable).with_name("flowserve"))
    async with live_server() as server, httpx.AsyncClient() as http:
        served = await snippets_for(http, server.url, "prompt-echo")
        local = await run_process(
            flowserve_bin,
            "snippets",
            str(FLOWS / "prompt-echo.json"),
            "--url",
            server.url,
            "--language",
            "curl",
        )
        remote = await run_process(
            flowserve_bin, "snippets", "prompt-echo", "--url", server.url, "--language", "python"
        )
        missing = await run_process(flowserve_bin, "snippets", "nope", "--url", server.url)
    assert local[0] == 0, local[2]
    assert local[1].removesuffix("\n") == served["curl"]
    assert remote[0] == 0, remote[2]
    assert remote[1].removesuffix("\n") == served["python_requests"]
    assert missing[0] == 2
    assert "404: Flow identifier nope not found" in missing[2]
