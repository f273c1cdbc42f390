"""URL, API Request and Web Search against a loopback web site."""

from __future__ import annotations

from typing import Any

import pytest

from flowserve.components.http import APIRequest, URLComponent
from flowserve.components.outbound import BlockedURL
from flowserve.components.search import UnifiedWebSearch
from flowserve.engine.types import Data
from flowserve.errors import UpstreamError
from tests.fakes.flows import make_node, node_context
from tests.fakes.server import ThreadedServer

ALLOW = {"outbound_allowlist": "127.0.0.1"}


def _url_params(**overrides: Any) -> dict[str, Any]:
    return {
        "max_depth": 1,
        "prevent_outside": True,
        "format": "Text",
        "timeout": 5,
        "headers": [],
        "continue_on_failure": True,
        "follow_redirects": True,
        **overrides,
    }


async def test_url_component_extracts_page_text(website: ThreadedServer) -> None:
    component = URLComponent(make_node("URLComponent"))
    ctx = node_context(services=ALLOW, wanted={"page_results", "raw_results"})
    out = await component.run(ctx, _url_params(urls=[f"{website.url}/page"]))
    [page] = out["page_results"]
    assert page.data["title"] == "Flowserve facts"
    assert page.data["description"] == "Facts page"
    assert "The secret number is 4217." in page.data["text"]
    assert "color: red" not in page.data["text"]
    assert out["raw_results"].text == page.data["text"]


async def test_url_component_follows_links_to_depth(website: ThreadedServer) -> None:
    component = URLComponent(make_node("URLComponent"))
    ctx = node_context(services=ALLOW, wanted={"page_results"})
    out = await component.run(ctx, _url_params(urls=[f"{website.url}/page"], max_depth=2))
    texts = [p.data["text"] for p in out["page_results"]]
    assert len(texts) == 2
    assert "Second page says hello." in texts[1]


async def test_url_component_without_allowlist_is_refused(website: ThreadedServer) -> None:
    component = URLComponent(make_node("URLComponent"))
    ctx = node_context(wanted={"page_results"})
    with pytest.raises(BlockedURL):
        await component.run(
            ctx, _url_params(urls=[f"{website.url}/page"], continue_on_failure=False)
        )


async def test_api_request_posts_json_with_headers_and_query(website: ThreadedServer) -> None:
    component = APIRequest(make_node("APIRequest"))
    ctx = node_context(services=ALLOW, wanted={"data"})
    out = await component.run(
        ctx,
        {
            "url_input": f"{website.url}/echo",
            "method": "POST",
            "mode": "URL",
            "body": [{"key": "name", "value": "Ada"}],
            "query_params": {"page": "2"},
            "headers": [{"key": "X-Token", "value": "t1"}],
            "timeout": 5,
            "follow_redirects": True,
        },
    )
    data: Data = out["data"]
    assert data.data["status_code"] == 200
    assert data.data["result"] == {
        "method": "POST",
        "query": {"page": "2"},
        "body": {"name": "Ada"},
        "x_token": "t1",
    }


async def test_api_request_answer_that_is_not_utf8_is_kept_as_text(
    website: ThreadedServer,
) -> None:
    # Latin-1 bytes labelled as JSON: not JSON (JSON is UTF-8), so the text, decoded leniently.
    component = APIRequest(make_node("APIRequest"))
    ctx = node_context(services=ALLOW, wanted={"data"})
    params = {"url_input": f"{website.url}/not-utf8", "method": "GET", "timeout": 5}
    data: Data = (await component.run(ctx, params))["data"]
    assert data.data["status_code"] == 200
    assert data.data["result"] == '{"name": "caf\ufffd"}'


async def test_api_request_to_metadata_address_is_refused() -> None:
    component = APIRequest(make_node("APIRequest"))
    ctx = node_context(services=ALLOW, wanted={"data"})
    with pytest.raises(BlockedURL):
        await component.run(
            ctx, {"url_input": "http://169.254.169.254/latest/meta-data/", "method": "GET"}
        )


def _search_services(website: ThreadedServer) -> dict[str, str]:
    return {
        **ALLOW,
        "web_search_url": f"{website.url}/search",
        "news_search_url": f"{website.url}/news",
    }


async def test_web_search_parses_results_and_fetches_content(website: ThreadedServer) -> None:
    component = UnifiedWebSearch(make_node("UnifiedWebSearch"))
    ctx = node_context(services=_search_services(website), wanted={"results"})
    out = await component.run(
        ctx,
        {
            "search_mode": "Web",
            "query": "flowserve",
            "max_results": 2,
            "max_content_length": 40,
            "timeout": 5,
        },
    )
    rows = [r.data for r in out["results"]]
    assert [r["title"] for r in rows] == ["Result 1 for flowserve", "Result 2 for flowserve"]
    assert rows[0]["snippet"] == "Snippet 1 about flowserve"
    assert rows[0]["link"] == f"{website.url}/page"
    # each result's page is fetched and cut to max_content_length
    assert rows[0]["content"] == "Facts\nThe secret number is 4217.\nsecond "


async def test_news_search_reads_the_rss_results(website: ThreadedServer) -> None:
    component = UnifiedWebSearch(make_node("UnifiedWebSearch"))
    ctx = node_context(services=_search_services(website), wanted={"results"})
    out = await component.run(
        ctx, {"search_mode": "News", "query": "llm", "max_results": 2, "hl": "fr-FR", "timeout": 5}
    )
    rows = [r.data for r in out["results"]]
    assert [r["title"] for r in rows] == ["News 1: llm", "News 2: llm"]
    assert rows[0]["summary"] == "Story 1 hl=fr-FR"
    assert rows[0]["link"] == "https://example.org/1"


async def test_rss_mode_reads_atom_feeds(website: ThreadedServer) -> None:
    component = UnifiedWebSearch(make_node("UnifiedWebSearch"))
    ctx = node_context(services=ALLOW, wanted={"results"})
    out = await component.run(ctx, {"search_mode": "RSS", "query": f"{website.url}/feed.atom"})
    [row] = [r.data for r in out["results"]]
    assert row == {
        "title": "First post",
        "link": "https://example.org/first",
        "published": "2026-11-01T00:00:00Z",
        "summary": "Hello world",
    }


async def test_feeds_with_entity_declarations_are_refused(website: ThreadedServer) -> None:
    component = UnifiedWebSearch(make_node("UnifiedWebSearch"))
    ctx = node_context(services=ALLOW, wanted={"results"})
    with pytest.raises(UpstreamError, match="DTD"):
        await component.run(ctx, {"search_mode": "RSS", "query": f"{website.url}/evil.rss"})


async def test_search_tool_arguments_cannot_override_other_fields(
    website: ThreadedServer,
) -> None:
    component = UnifiedWebSearch(make_node("UnifiedWebSearch"))
    ctx = node_context(services=_search_services(website), wanted={"component_as_tool"})
    params = {"search_mode": "News", "query": "", "max_results": 1, "timeout": 5}
    [tool] = (await component.run(ctx, params))["component_as_tool"]
    assert tool.name == "perform_search"
    assert set(tool.parameters["properties"]) == {"query", "search_mode"}
    text = await tool.invoke({"query": "agents", "max_results": 50})
    assert "News 1: agents" in text
    assert "News 2" not in text


async def test_request_variables_cannot_widen_the_guard(website: ThreadedServer) -> None:
    # global variables include X-LANGFLOW-GLOBAL-VAR-* request headers: never trusted here
    component = URLComponent(make_node("URLComponent"))
    ctx = node_context(
        variables={"FLOWSERVE_OUTBOUND_ALLOWLIST": "127.0.0.1", "outbound_allowlist": "127.0.0.1"},
        wanted={"page_results"},
    )
    with pytest.raises(BlockedURL):
        await component.run(
            ctx, _url_params(urls=[f"{website.url}/page"], continue_on_failure=False)
        )
