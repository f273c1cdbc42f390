"""The File (Read File) and SaveToFile (Write File) components, run through flows over
HTTP on both backends, reading what POST /api/v2/files stored, by the ``path`` tweak."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile

import pytest

from tests.api.filetools import (
    FILE_NODE,
    Keys,
    answer,
    docx_with_paragraphs,
    pdf_with_text,
    reader_flow,
    run,
    save_flow,
    upload,
)
from tests.conftest import FIXTURES
from tests.helpers import edge, flow, node

STARTERS = FIXTURES / "starter-projects"

CSV = b"name,amount\nwidgets,12\ngadgets,7\n"
FORMATS = [
    ("notes.txt", b"plain text, caf\xc3\xa9", "plain text, caf\u00e9"),
    ("readme.md", b"# Title\n\n- item", "# Title\n\n- item"),
    ("table.csv", CSV, CSV.decode()),
    ("data.json", b'{ "a" : [1, 2],\n "b": "x" }', '{"a":[1,2],"b":"x"}'),
    ("page.html", b"<h1>Hi</h1>", "<h1>Hi</h1>"),
    ("conf.yaml", b"key: value\n", "key: value\n"),
    ("legacy.txt", b"na\xefve", "na\u00efve"),  # cp1252, not UTF-8
]


@pytest.mark.parametrize(("name", "content", "expected"), FORMATS)
async def test_text_formats_are_read_by_the_path_tweak(
    file_keys: Keys, name: str, content: bytes, expected: str
) -> None:
    client = file_keys.client
    uploaded = await upload(client, file_keys.a, name, content)
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    response = await run(client, file_keys.a, flow_id, {FILE_NODE: {"path": [uploaded["path"]]}})
    assert answer(response) == expected


async def test_pdf_text_is_extracted(file_keys: Keys) -> None:
    client = file_keys.client
    pdf = pdf_with_text(["Quarterly revenue grew", "by 12 percent"])
    uploaded = await upload(client, file_keys.a, "report.pdf", pdf)
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    text = answer(await run(client, file_keys.a, flow_id, {FILE_NODE: {"path": uploaded["path"]}}))
    assert "Quarterly revenue grew" in text
    assert "by 12 percent" in text


async def test_docx_paragraphs_and_tables_are_extracted(file_keys: Keys) -> None:
    client = file_keys.client
    docx = docx_with_paragraphs(["First paragraph.", "Second one."], [["cell A", "cell B"]])
    uploaded = await upload(client, file_keys.a, "memo.docx", docx)
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    text = answer(
        await run(client, file_keys.a, flow_id, {FILE_NODE: {"path": [uploaded["path"]]}})
    )
    assert text == "First paragraph.\n\nSecond one.\n\ncell A\n\ncell B"


async def test_several_files_are_joined_by_the_separator(file_keys: Keys) -> None:
    client = file_keys.client
    one = await upload(client, file_keys.a, "one.txt", b"one")
    two = await upload(client, file_keys.a, "two.md", b"two")
    flow_id = await save_flow(client, file_keys.a, reader_flow(separator=" | "))
    tweaks = {FILE_NODE: {"path": [one["path"], two["path"]]}}
    assert answer(await run(client, file_keys.a, flow_id, tweaks)) == "one | two"


async def test_broken_documents_fail_cleanly_naming_the_file(file_keys: Keys) -> None:
    client = file_keys.client
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    for name, content in (
        ("bad.pdf", b"%PDF-1.4 not really"),
        ("bad.docx", b"not a zip"),
        ("bad.json", b"{nope"),
        ("bomb.docx", _entity_bomb_docx()),
    ):
        uploaded = await upload(client, file_keys.a, name, content)
        response = await run(client, file_keys.a, flow_id, {FILE_NODE: {"path": uploaded["path"]}})
        assert response.status_code == 422, (name, response.text)
        detail = response.json()["detail"]
        assert FILE_NODE in detail
        assert uploaded["path"] in detail


def _entity_bomb_docx() -> bytes:
    """A "billion laughs" document body: refused before any entity is expanded."""
    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10 if i else "lol"}">' for i in range(9))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&e8;</w:t></w:r></w:p></w:body></w:document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", body)
    return out.getvalue()


async def test_another_keys_file_cannot_be_read_by_a_tweak(file_keys: Keys) -> None:
    client = file_keys.client
    secret = await upload(client, file_keys.a, "secret.txt", b"A's secret")
    flow_id = await save_flow(client, file_keys.admin, reader_flow())
    tweaks = {FILE_NODE: {"path": [secret["path"]]}}

    refused = await run(client, file_keys.b, flow_id, tweaks)
    assert refused.status_code == 404, refused.text
    body = refused.json()
    assert body["code"] == "file_not_found"
    assert FILE_NODE in body["detail"]
    assert secret["path"] in body["detail"]
    assert "A's secret" not in refused.text
    # The same answer as for a path that names nothing: nothing tells whether it exists.
    missing = await run(
        client, file_keys.b, flow_id, {FILE_NODE: {"path": f"{file_keys.a_id}/x.txt"}}
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == body["code"]

    assert answer(await run(client, file_keys.a, flow_id, tweaks)) == "A's secret"
    assert answer(await run(client, file_keys.admin, flow_id, tweaks)) == "A's secret"


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x.txt", "../../etc/hosts.txt", "/proc/self/environ.txt", "x" * 5000]
)
async def test_paths_that_are_not_ours_are_never_read(file_keys: Keys, path: str) -> None:
    client = file_keys.client
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    response = await run(client, file_keys.admin, flow_id, {FILE_NODE: {"path": [path]}})
    assert response.status_code in (404, 422), response.text
    assert "root:" not in response.text
    assert FILE_NODE in response.json()["detail"]


async def test_a_file_saved_in_the_flow_is_readable_by_any_run_of_it(file_keys: Keys) -> None:
    client = file_keys.client
    shared = await upload(client, file_keys.a, "shared.txt", b"from the flow's writer")
    flow_id = await save_flow(client, file_keys.a, reader_flow([shared["path"]]))
    assert answer(await run(client, file_keys.b, flow_id)) == "from the flow's writer"


async def test_v1_flow_upload_is_read_by_its_path(file_keys: Keys) -> None:
    client = file_keys.client
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    uploaded = await client.post(
        f"/api/v1/files/upload/{flow_id}",
        files={"file": ("v1.txt", b"via v1")},
        headers=file_keys.a,
    )
    path = uploaded.json()["file_path"]
    assert (
        answer(await run(client, file_keys.a, flow_id, {FILE_NODE: {"path": [path]}})) == "via v1"
    )
    refused = await run(client, file_keys.b, flow_id, {FILE_NODE: {"path": [path]}})
    assert refused.status_code == 404


async def test_no_path_is_a_clear_422(file_keys: Keys) -> None:
    client = file_keys.client
    flow_id = await save_flow(client, file_keys.a, reader_flow())
    response = await run(client, file_keys.a, flow_id)
    assert response.status_code == 422
    assert "path" in response.json()["detail"]


def _csv_rows_flow() -> dict[str, object]:
    """File.dataframe -> Parser -> Chat Output: the CSV's rows, one line each."""
    nodes = [
        node(FILE_NODE, "File"),
        node("ParserComponent-p1", "ParserComponent", pattern="{name}={amount}", sep=";"),
        node("ChatOutput-o1", "ChatOutput"),
    ]
    edges = [
        edge(FILE_NODE, "dataframe", "ParserComponent-p1", "input_data"),
        edge("ParserComponent-p1", "parsed_text", "ChatOutput-o1", "input_value"),
    ]
    return flow(str(uuid.uuid4()), nodes, edges)


async def test_csv_dataframe_output_has_one_row_per_line(file_keys: Keys) -> None:
    client = file_keys.client
    uploaded = await upload(client, file_keys.a, "table.csv", CSV)
    flow_id = await save_flow(client, file_keys.a, _csv_rows_flow())
    text = answer(
        await run(client, file_keys.a, flow_id, {FILE_NODE: {"path": [uploaded["path"]]}})
    )
    assert text == "widgets=12;gadgets=7"


# ---- SaveToFile ------------------------------------------------------------------------


def _writer_flow(**fields: object) -> dict[str, object]:
    """Chat Input -> Write File -> Chat Output (the saved file's path message)."""
    values = {"file_name": "news-aggregated", **fields}
    nodes = [
        node("ChatInput-w1", "ChatInput"),
        node("SaveToFile-w2", "SaveToFile", **values),
        node("ChatOutput-w3", "ChatOutput"),
    ]
    edges = [
        edge("ChatInput-w1", "message", "SaveToFile-w2", "input"),
        edge("SaveToFile-w2", "message", "ChatOutput-w3", "input_value"),
    ]
    return flow(str(uuid.uuid4()), nodes, edges)


async def _saved(file_keys: Keys, headers: dict[str, str]) -> list[dict[str, object]]:
    listing = await file_keys.client.get("/api/v2/files", headers=headers)
    assert listing.status_code == 200
    files: list[dict[str, object]] = listing.json()
    return files


@pytest.mark.parametrize(
    ("fmt", "suffix", "expected"),
    [
        ("json", ".json", json.dumps({"message": "the news"}, indent=2).encode()),
        ("txt", ".txt", b"the news"),
        ("markdown", ".md", b"**Message:**\n\nthe news"),
    ],
)
async def test_save_to_file_stores_the_input_as_the_runs_key(
    file_keys: Keys, fmt: str, suffix: str, expected: bytes
) -> None:
    client = file_keys.client
    flow_id = await save_flow(client, file_keys.a, _writer_flow(local_format=fmt))
    response = await client.post(
        f"/api/v1/run/{flow_id}", json={"input_value": "the news"}, headers=file_keys.a
    )
    text = answer(response)
    files = await _saved(file_keys, file_keys.a)
    assert len(files) == 1
    saved = files[0]
    assert str(saved["path"]).startswith(f"{file_keys.a_id}/")
    assert str(saved["path"]).endswith(suffix)
    assert text == f"Message saved successfully as '{saved['path']}'"
    download = await client.get(f"/api/v2/files/{saved['id']}", headers=file_keys.a)
    assert download.content == expected
    assert 'filename="news-aggregated' in download.headers["content-disposition"]
    assert await _saved(file_keys, file_keys.b) == []


async def test_save_to_file_refuses_paths_and_bad_formats(file_keys: Keys) -> None:
    client = file_keys.client
    for fields, needle in (
        ({"file_name": "../../etc/cron.d/x"}, "file name"),
        ({"file_name": "/var/spool/evil"}, "file name"),
        ({"local_format": "csv"}, "Invalid file format"),
    ):
        flow_id = await save_flow(client, file_keys.a, _writer_flow(**fields))
        response = await client.post(
            f"/api/v1/run/{flow_id}", json={"input_value": "x"}, headers=file_keys.a
        )
        assert response.status_code == 422, (fields, response.text)
        assert needle.lower() in response.json()["detail"].lower()
    assert await _saved(file_keys, file_keys.admin) == []


async def test_saved_file_is_read_back_by_the_file_component(file_keys: Keys) -> None:
    client = file_keys.client
    writer = await save_flow(client, file_keys.a, _writer_flow(local_format="txt"))
    await client.post(
        f"/api/v1/run/{writer}", json={"input_value": "round trip"}, headers=file_keys.a
    )
    [saved] = await _saved(file_keys, file_keys.a)
    reader = await save_flow(client, file_keys.a, reader_flow())
    text = answer(await run(client, file_keys.a, reader, {FILE_NODE: {"path": [saved["path"]]}}))
    assert text == "round trip"


# ---- the nodes of Langflow's starter projects, as Langflow saved them ------------------


def _starter_node(project: str, type_: str) -> dict[str, object]:
    doc = json.loads((STARTERS / f"{project}.json").read_text(encoding="utf-8"))
    found: dict[str, object] = next(n for n in doc["data"]["nodes"] if n["data"]["type"] == type_)
    return found


@pytest.mark.parametrize("project", ["Text Sentiment Analysis", "Hybrid Search RAG"])
async def test_starter_file_nodes_read_an_upload_by_the_documented_tweak(
    file_keys: Keys, project: str
) -> None:
    client = file_keys.client
    file_node = _starter_node(project, "File")
    node_id = str(file_node["id"])
    doc = flow(
        str(uuid.uuid4()),
        [file_node, node("ChatOutput-s1", "ChatOutput")],
        [edge(node_id, "message", "ChatOutput-s1", "input_value")],
    )
    uploaded = await upload(client, file_keys.a, "review.txt", b"Great product, slow delivery.")
    flow_id = await save_flow(client, file_keys.a, doc)
    response = await run(client, file_keys.a, flow_id, {node_id: {"path": [uploaded["path"]]}})
    assert answer(response) == "Great product, slow delivery."


async def test_starter_save_to_file_node_saves_to_the_store(file_keys: Keys) -> None:
    client = file_keys.client
    save_node = _starter_node("Content Aggregator", "SaveToFile")
    node_id = str(save_node["id"])
    doc = flow(
        str(uuid.uuid4()),
        [node("ChatInput-s1", "ChatInput"), save_node, node("ChatOutput-s2", "ChatOutput")],
        [
            edge("ChatInput-s1", "message", node_id, "input"),
            edge(node_id, "message", "ChatOutput-s2", "input_value"),
        ],
    )
    flow_id = await save_flow(client, file_keys.a, doc)
    response = await client.post(
        f"/api/v1/run/{flow_id}", json={"input_value": "aggregated"}, headers=file_keys.a
    )
    assert "saved successfully" in answer(response)
    [saved] = await _saved(file_keys, file_keys.a)
    assert saved["name"] == "news-aggregated"  # the starter's file_name, json by its format
    assert str(saved["path"]).endswith(".json")
    download = await client.get(f"/api/v2/files/{saved['id']}", headers=file_keys.a)
    assert json.loads(download.content) == {"message": "aggregated"}


async def test_a_webhook_run_saves_as_the_key_that_sent_it(file_keys: Keys) -> None:
    client = file_keys.client
    nodes = [
        node("Webhook-h1", "Webhook"),
        node("SaveToFile-h2", "SaveToFile", file_name="hook", local_format="json"),
        node("ChatOutput-h3", "ChatOutput"),
    ]
    edges = [
        edge("Webhook-h1", "output_data", "SaveToFile-h2", "input"),
        edge("SaveToFile-h2", "message", "ChatOutput-h3", "input_value"),
    ]
    flow_id = await save_flow(client, file_keys.a, flow(str(uuid.uuid4()), nodes, edges))
    sent = await client.post(f"/api/v1/webhook/{flow_id}", json={"x": 1}, headers=file_keys.a)
    assert sent.status_code == 202, sent.text
    async with asyncio.timeout(20):
        while True:
            job = (await client.get(sent.headers["location"], headers=file_keys.a)).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(0.05)
    assert job["status"] == "succeeded", job
    [saved] = await _saved(file_keys, file_keys.a)
    assert str(saved["path"]).startswith(f"{file_keys.a_id}/")
    download = await client.get(f"/api/v2/files/{saved['id']}", headers=file_keys.a)
    assert json.loads(download.content) == {"x": 1}
    assert await _saved(file_keys, file_keys.b) == []
