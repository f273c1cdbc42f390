"""UnifiedWebSearch: Web (a DuckDuckGo-style HTML results page), News (a news RSS
search) and RSS (any RSS or Atom feed), through the SSRF guard.

Endpoints are operator configuration, handed over by the runner as
``services["web_search_url"]`` (default DuckDuckGo's HTML endpoint, queried
with ``q``) and ``services["news_search_url"]`` (default Google News' RSS
search, queried with ``q``, ``hl``, ``gl``, ``ceid``), so a deployment or a
test can point them elsewhere; a caller cannot.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from flowserve.components.outbound import Allowlist, guarded_request, http_client
from flowserve.components.tools import COMPONENT_AS_TOOL, ToolComponent
from flowserve.components.webpage import html_to_text
from flowserve.engine.component import Input, NodeContext, Output
from flowserve.engine.types import Data, to_text
from flowserve.errors import FlowserveError, Invalid, UpstreamError

WEB_SEARCH_SERVICE = "web_search_url"
NEWS_SEARCH_SERVICE = "news_search_url"
DEFAULT_WEB_SEARCH_URL = "https://html.duckduckgo.com/html/"
DEFAULT_NEWS_SEARCH_URL = "https://news.google.com/rss/search"
_ATOM = "{http://www.w3.org/2005/Atom}"
_USER_AGENT = "Mozilla/5.0 (compatible; flowserve)"


class _ResultsParser(HTMLParser):
    """Result links (``class="result__a"``) and snippets (``result__snippet``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.results: list[dict[str, str]] = []
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "a" and "result__a" in classes:
            self.results.append({"title": "", "link": values.get("href") or "", "snippet": ""})
            self._field = "title"
        elif "result__snippet" in classes and self.results:
            self._field = "snippet"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("a", "div", "td"):
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._field and self.results:
            self.results[-1][self._field] += data


def _real_link(link: str, base: str) -> str:
    """DuckDuckGo wraps result links as ``/l/?uddg=<target>``."""
    absolute = urljoin(base, link)
    target = parse_qs(urlsplit(absolute).query).get("uddg")
    return target[0] if target else absolute


def service_url(ctx: NodeContext, service: str, default: str) -> str:
    configured = ctx.run.services.get(service)
    return configured if isinstance(configured, str) and configured else default


def xml_root(document: bytes, what: str = "feed") -> ET.Element:
    """Parse an XML answer with the standard library, refusing any DTD or entity
    declaration first: feeds never need one, and refusing them rules out entity
    expansion bombs and external entities without a dependency."""
    head = document[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in document.lower():
        raise UpstreamError(f"refusing a {what} that declares a DTD or entities")
    try:
        return ET.fromstring(document)  # noqa: S314 - DTDs and entities refused above
    except ET.ParseError as exc:
        raise UpstreamError(f"the {what} is not valid XML: {exc}") from exc


def parse_feed(document: bytes) -> list[dict[str, str]]:
    """Items of an RSS 2.0 or Atom feed as ``{title, link, published, summary}``."""
    root = xml_root(document)
    items: list[dict[str, str]] = []
    for item in root.iter("item"):
        items.append(
            {
                "title": (item.findtext("title") or "").strip(),
                "link": (item.findtext("link") or "").strip(),
                "published": (item.findtext("pubDate") or "").strip(),
                "summary": html_to_text(item.findtext("description") or "")[0],
            }
        )
    for entry in root.iter(f"{_ATOM}entry"):
        link = entry.find(f"{_ATOM}link")
        summary = entry.findtext(f"{_ATOM}summary") or entry.findtext(f"{_ATOM}content") or ""
        items.append(
            {
                "title": (entry.findtext(f"{_ATOM}title") or "").strip(),
                "link": (link.get("href") or "") if link is not None else "",
                "published": (entry.findtext(f"{_ATOM}updated") or "").strip(),
                "summary": html_to_text(summary)[0],
            }
        )
    return items


class UnifiedWebSearch(ToolComponent):
    type_name = "UnifiedWebSearch"
    display_name = "Web Search"
    description = "Search the web, news, or RSS feeds."
    category = "data_source"
    icon = "search"
    tool_output = "results"
    tool_name = "perform_search"
    tool_args = ("query", "search_mode")
    inputs = (
        Input(
            "search_mode",
            "str",
            "Web",
            "Search Mode",
            "Choose search mode: Web, News, or RSS (Feed Reader)",
            options=("Web", "News", "RSS"),
        ),
        Input(
            "query",
            "str",
            "",
            "Search Query",
            "Search keywords for Web and News; the feed URL for RSS.",
            input_types=("Message",),
        ),
        Input("hl", "str", "", "Language (hl)", advanced=True),
        Input("gl", "str", "", "Country (gl)", advanced=True),
        Input("ceid", "str", "US:en", "Country:Language (ceid)", advanced=True),
        Input("topic", "str", "", "Topic", advanced=True),
        Input("location", "str", "", "Location", advanced=True),
        Input("timeout", "int", 5, "Timeout", advanced=True),
        Input("max_results", "int", 5, "Max Results", advanced=True),
        Input("max_content_length", "int", 2000, "Max Content Length", advanced=True),
    )
    outputs = (
        Output("results", ("Table", "DataFrame"), "Results", "perform_search"),
        COMPONENT_AS_TOOL,
    )

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        query = to_text(params.get("query")).strip()
        if not query:
            raise Invalid("no search query given: set 'query'")
        mode = str(params.get("search_mode") or "Web")
        limit = max(1, int(params.get("max_results") or 5))
        async with http_client(ctx) as client:
            if mode == "Web":
                rows = await self._web(ctx, client, params, query, limit)
            elif mode == "News":
                rows = await self._news(ctx, client, params, query, limit)
            elif mode == "RSS":
                rows = (await self._feed(ctx, client, params, query))[:limit]
            else:
                raise Invalid(f"unknown search mode '{mode}' (Web, News or RSS)")
        return {
            "results": [
                Data(row, text_key="snippet" if mode == "Web" else "summary") for row in rows
            ]
        }

    async def _get(
        self,
        ctx: NodeContext,
        client: httpx.AsyncClient,
        url: str,
        params: Mapping[str, Any],
        query: Mapping[str, str] | None,
    ) -> bytes:
        response, body = await guarded_request(
            client,
            "GET",
            url,
            allow=Allowlist.of(ctx),
            params=query,
            headers={"User-Agent": _USER_AGENT},
            time_limit=float(params.get("timeout") or 5),
        )
        if response.status_code >= 400:
            raise UpstreamError(f"{url} answered HTTP {response.status_code}")
        return body

    async def _web(
        self,
        ctx: NodeContext,
        client: httpx.AsyncClient,
        params: Mapping[str, Any],
        query: str,
        limit: int,
    ) -> list[dict[str, str]]:
        endpoint = service_url(ctx, WEB_SEARCH_SERVICE, DEFAULT_WEB_SEARCH_URL)
        body = await self._get(ctx, client, endpoint, params, {"q": query})
        parser = _ResultsParser()
        parser.feed(body.decode(errors="replace"))
        rows = [
            {
                "title": r["title"].strip(),
                "link": _real_link(r["link"], endpoint),
                "snippet": re.sub(r"\s+", " ", r["snippet"]).strip(),
            }
            for r in parser.results
            if r["link"]
        ][:limit]
        length = int(params.get("max_content_length") or 2000)
        contents = await asyncio.gather(
            *(self._content(ctx, client, params, row["link"], length) for row in rows)
        )
        for row, content in zip(rows, contents, strict=True):
            row["content"] = content or row["snippet"]
        return rows

    async def _content(
        self,
        ctx: NodeContext,
        client: httpx.AsyncClient,
        params: Mapping[str, Any],
        link: str,
        length: int,
    ) -> str:
        try:
            body = await self._get(ctx, client, link, params, None)
        except FlowserveError:
            return ""
        return html_to_text(body.decode(errors="replace"))[0][:length]

    async def _news(
        self,
        ctx: NodeContext,
        client: httpx.AsyncClient,
        params: Mapping[str, Any],
        query: str,
        limit: int,
    ) -> list[dict[str, str]]:
        endpoint = service_url(ctx, NEWS_SEARCH_SERVICE, DEFAULT_NEWS_SEARCH_URL)
        hl = str(params.get("hl") or "en-US")
        gl = str(params.get("gl") or "US")
        ceid = str(params.get("ceid") or f"{gl}:{hl.split('-')[0]}")
        body = await self._get(
            ctx, client, endpoint, params, {"q": query, "hl": hl, "gl": gl, "ceid": ceid}
        )
        return parse_feed(body)[:limit]

    async def _feed(
        self, ctx: NodeContext, client: httpx.AsyncClient, params: Mapping[str, Any], url: str
    ) -> list[dict[str, str]]:
        if "://" not in url:
            url = "https://" + url
        return parse_feed(await self._get(ctx, client, url, params, None))
