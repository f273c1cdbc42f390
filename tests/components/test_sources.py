"""arXiv, AssemblyAI, SQL Database and Batch Run against loopback fakes and real databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flowserve.components.arxiv import ArXivComponent
from flowserve.components.assemblyai import AssemblyAITranscriber
from flowserve.components.batch import BatchRunComponent
from flowserve.components.outbound import BlockedURL
from flowserve.components.sql import SQLComponent
from flowserve.engine.types import Data, Message
from flowserve.errors import Invalid, QueryFailed, UpstreamError
from flowserve.store.query_db import open_query_database
from tests.fakes.arxiv_server import FakeArxiv
from tests.fakes.assemblyai_server import KEY, FakeAssemblyAI
from tests.fakes.flows import make_node, node_context
from tests.fakes.openai_server import FakeOpenAI

LOOPBACK = {"outbound_allowlist": "127.0.0.1"}


# -- arXiv -------------------------------------------------------------------------------


def arxiv_run(fake: FakeArxiv, **services: Any) -> Any:
    return node_context(
        services={**LOOPBACK, "arxiv_url": fake.url, **services}, wanted={"dataframe"}
    )


async def test_arxiv_rows_carry_langflows_columns(fake_arxiv: FakeArxiv) -> None:
    out = await ArXivComponent(make_node("ArXivComponent")).run(
        arxiv_run(fake_arxiv),
        {"search_query": Message(text="loops"), "search_type": "title", "max_results": 2},
    )
    rows = out["dataframe"]
    assert [r.data["title"] for r in rows] == ["Paper 1 about ti:loops", "Paper 2 about ti:loops"]
    first = rows[0].data
    assert first["summary"] == "Summary 1: we study ti:loops."
    assert first["authors"] == ["Author 1A", "Author 1B"]
    assert first["pdf_url"] == "http://arxiv.org/pdf/2601.00001v1"
    assert first["arxiv_url"] == "http://arxiv.org/abs/2601.00001v1"
    assert first["primary_category"] == "cs.AI"
    assert first["categories"] == ["cs.AI", "cs.CL"]
    assert first["comment"] == "1 pages"
    assert fake_arxiv.requests == [{"search_query": "ti:loops", "max_results": "2"}]


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("status", "arXiv answered HTTP 503"),
        ("garbage", "not valid XML"),
        ("html", "not an Atom feed"),
        ("entities", "declares a DTD or entities"),
    ],
)
async def test_a_broken_arxiv_answer_is_a_502(
    fake_arxiv: FakeArxiv, mode: str, fragment: str
) -> None:
    fake_arxiv.mode = mode
    with pytest.raises(UpstreamError, match=fragment) as caught:
        await ArXivComponent(make_node("ArXivComponent")).run(
            arxiv_run(fake_arxiv), {"search_query": "x", "search_type": "all", "max_results": 3}
        )
    assert caught.value.status == 502


async def test_arxiv_unreachable_is_a_502_and_private_hosts_need_the_allowlist(
    fake_arxiv: FakeArxiv,
) -> None:
    params = {"search_query": "x", "search_type": "all", "max_results": 3}
    with pytest.raises(UpstreamError, match="failed"):
        await ArXivComponent(make_node("ArXivComponent")).run(
            arxiv_run(fake_arxiv, arxiv_url="http://127.0.0.1:1/api/query"), params
        )
    guarded = node_context(services={"arxiv_url": fake_arxiv.url}, wanted={"dataframe"})
    with pytest.raises(BlockedURL):
        await ArXivComponent(make_node("ArXivComponent")).run(guarded, params)
    assert fake_arxiv.requests == []


# -- AssemblyAI ----------------------------------------------------------------------------


def transcriber_run(fake: FakeAssemblyAI) -> Any:
    return node_context(
        services={
            **LOOPBACK,
            "assemblyai_url": fake.url,
            "assemblyai_poll_interval": 0.01,
            "assemblyai_timeout": 60.0,
        },
        wanted={"transcript"},
    )


AUDIO = {"audio_url": "https://example.org/meeting.mp3", "poll_timeout": 30}


async def test_assemblyai_starts_a_transcript_and_polls_until_done(
    fake_assemblyai: FakeAssemblyAI,
) -> None:
    fake_assemblyai.polls_before_done = 3
    out = await AssemblyAITranscriber(make_node("AssemblyAITranscriber")).run(
        transcriber_run(fake_assemblyai),
        {**AUDIO, "api_key": KEY, "speaker_labels": True, "language_code": "en"},
    )
    assert out["transcript"].text == "Transcript of https://example.org/meeting.mp3"
    assert fake_assemblyai.polls == 3
    assert fake_assemblyai.started == [
        {
            "audio_url": "https://example.org/meeting.mp3",
            "speaker_labels": True,
            "language_code": "en",
        }
    ]


async def test_assemblyai_without_a_key_is_a_422(fake_assemblyai: FakeAssemblyAI) -> None:
    with pytest.raises(Invalid, match="AssemblyAI API Key is required"):
        await AssemblyAITranscriber(make_node("AssemblyAITranscriber")).run(
            transcriber_run(fake_assemblyai), {**AUDIO, "api_key": ""}
        )
    assert fake_assemblyai.started == []


@pytest.mark.parametrize(
    ("mode", "key", "fragment"),
    [
        ("ok", "wrong-key", "refused the API key"),
        ("error", KEY, "transcription error: audio unreadable"),
        ("never", KEY, "did not finish within 1 s"),
        ("garbage", KEY, "answered something unexpected"),
    ],
)
async def test_assemblyai_failures_are_502s(
    fake_assemblyai: FakeAssemblyAI, mode: str, key: str, fragment: str
) -> None:
    fake_assemblyai.mode = mode
    with pytest.raises(UpstreamError, match=fragment):
        await AssemblyAITranscriber(make_node("AssemblyAITranscriber")).run(
            transcriber_run(fake_assemblyai), {**AUDIO, "api_key": key, "poll_timeout": 1}
        )


# -- SQL Database --------------------------------------------------------------------------


@pytest.fixture
def pricing_db(tmp_path: Path) -> str:
    path = tmp_path / "pricing.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE plans (name TEXT, price INTEGER)")
        conn.executemany("INSERT INTO plans VALUES (?, ?)", [("free", 0), ("pro", 20)])
    return f"sqlite:///{path}"


def sql_run(url: str | None) -> Any:
    services = {}
    if url:
        services["sql_database"] = open_query_database(
            url, allow_writes=False, timeout=5, max_rows=1
        )
    return node_context(services=services, wanted={"run_sql_query"})


async def test_sql_queries_the_operators_database_with_a_row_cap(pricing_db: str) -> None:
    # The flow's own database_url is ignored: only the operator's database is queried.
    component = SQLComponent(make_node("SQLComponent", database_url="sqlite:///elsewhere.db"))
    ctx = sql_run(pricing_db)
    out = await component.run(
        ctx,
        {"database_url": "sqlite:///elsewhere.db", "query": "SELECT * FROM plans ORDER BY price"},
    )
    assert out["run_sql_query"] == [Data({"name": "free", "price": 0})]
    assert "FLOWSERVE_SQL_MAX_ROWS" in ctx.logs[0]["message"]


async def test_sql_refuses_a_run_choosing_the_database(pricing_db: str) -> None:
    with pytest.raises(Invalid, match="database_url cannot be set by a run"):
        await SQLComponent(make_node("SQLComponent", database_url="")).run(
            sql_run(pricing_db), {"database_url": "postgresql://evil/db", "query": "SELECT 1"}
        )


async def test_sql_without_a_configured_database_says_how_to_configure_one() -> None:
    with pytest.raises(Invalid, match="FLOWSERVE_SQL_DATABASE_URL") as caught:
        await SQLComponent(make_node("SQLComponent")).run(sql_run(None), {"query": "SELECT 1"})
    assert caught.value.status == 422


async def test_sql_writes_are_refused_by_default(pricing_db: str) -> None:
    with pytest.raises(QueryFailed, match="read-only"):
        await SQLComponent(make_node("SQLComponent")).run(
            sql_run(pricing_db), {"query": "DELETE FROM plans"}
        )


async def test_sql_as_an_agent_tool_takes_only_the_query(pricing_db: str) -> None:
    component = SQLComponent(make_node("SQLComponent"))
    ctx = node_context(
        services={
            "sql_database": open_query_database(
                pricing_db, allow_writes=False, timeout=5, max_rows=10
            )
        },
        wanted={"component_as_tool"},
    )
    [tool] = (await component.run(ctx, {"query": ""}))["component_as_tool"]
    assert tool.name == "run_sql_query"
    assert list(tool.parameters["properties"]) == ["query"]
    answer = await tool.invoke({"query": "SELECT price FROM plans WHERE name = 'pro'"})
    assert '"price": 20' in answer


# -- Batch Run -----------------------------------------------------------------------------


def batch_run(fake: FakeOpenAI) -> Any:
    return node_context(
        services=LOOPBACK,
        variables={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.base_url},
        wanted={"batch_results"},
    )


ROWS = [Data({"title": f"News {i}", "summary": f"story {i}"}) for i in range(1, 13)]


async def test_batch_run_answers_every_row_in_order(fake_openai: FakeOpenAI) -> None:
    ctx = batch_run(fake_openai)
    out = await BatchRunComponent(make_node("BatchRunComponent")).run(
        ctx,
        {
            "model": "gpt-4o-mini",
            "df": ROWS,
            "column_name": "summary",
            "output_column_name": "brief",
            "system_message": "One sentence.",
            "enable_metadata": True,
        },
    )
    rows = [r.data for r in out["batch_results"]]
    assert [r["brief"] for r in rows] == [f"Echo: story {i}" for i in range(1, 13)]
    assert [r["batch_index"] for r in rows] == list(range(12))
    assert rows[0]["title"] == "News 1"
    assert rows[0]["metadata"]["processing_status"] == "success"
    assert len(fake_openai.requests) == 12
    assert all(
        r["messages"][0] == {"role": "system", "content": "One sentence."}
        for r in fake_openai.requests
    )
    assert ctx.run.usage is not None
    assert ctx.run.usage.total_tokens > 0


async def test_batch_run_without_a_column_sends_each_row_as_toml(
    fake_openai: FakeOpenAI,
) -> None:
    out = await BatchRunComponent(make_node("BatchRunComponent")).run(
        batch_run(fake_openai), {"model": "gpt-4o-mini", "df": ROWS[:1], "column_name": ""}
    )
    sent = fake_openai.requests[0]["messages"]
    assert sent == [
        {
            "role": "user",
            "content": '[title]\nvalue = "News 1"\n\n[summary]\nvalue = "story 1"\n',
        }
    ]
    assert out["batch_results"][0].data["model_response"].startswith("Echo: [title]")


async def test_batch_run_names_a_missing_column(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(
        Invalid, match=r"Column 'nope' not found.*Available columns: title, summary"
    ):
        await BatchRunComponent(make_node("BatchRunComponent")).run(
            batch_run(fake_openai), {"model": "gpt-4o-mini", "df": ROWS, "column_name": "nope"}
        )
    assert fake_openai.requests == []


async def test_batch_run_fails_with_the_providers_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_statuses = [400]
    with pytest.raises(UpstreamError) as caught:
        await BatchRunComponent(make_node("BatchRunComponent")).run(
            batch_run(fake_openai),
            {"model": "gpt-4o-mini", "df": ROWS[:3], "column_name": "summary", "max_retries": 0},
        )
    assert caught.value.status == 502
