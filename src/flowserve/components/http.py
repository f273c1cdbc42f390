"""Fetching from the web: ``URLComponent`` (pages as text) and ``APIRequest``.

Every request goes through the SSRF guard in ``outbound`` (each redirect hop
included), with a time limit and a size limit per response.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import msgspec

from flowserve.components.outbound import Allowlist, guarded_request, http_client
from flowserve.components.tools import COMPONENT_AS_TOOL, ToolComponent
from flowserve.components.webpage import html_to_text
from flowserve.engine.component import Input, NodeContext, Output
from flowserve.engine.types import Data, Message
from flowserve.errors import FlowserveError, Invalid, PoolExhausted

MAX_PAGES = 50


def table_pairs(value: Any) -> dict[str, str]:
    """Langflow key/value tables (``[{"key": k, "value": v}]``) or plain dicts."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    pairs: dict[str, str] = {}
    if isinstance(value, list):
        for row in value:
            if isinstance(row, dict) and row.get("key"):
                pairs[str(row["key"])] = str(
                    row.get("value") if row.get("value") is not None else ""
                )
    return pairs


def _normalise_url(url: str) -> str:
    url = url.strip()
    if url and "://" not in url:
        url = "https://" + url
    return url


def _url_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    urls: list[str] = []
    for item in items:
        text = item.text if isinstance(item, Message) else str(item or "")
        urls.extend(_normalise_url(u) for u in re.split(r"[\s,]+", text) if u.strip())
    return urls


class URLComponent(ToolComponent):
    type_name = "URLComponent"
    display_name = "URL"
    description = "Fetch content from one or more web pages, following links recursively."
    category = "data_source"
    icon = "layout-template"
    tool_output = "page_results"
    tool_name = "fetch_content"
    tool_args = ("urls",)
    inputs = (
        Input(
            "urls",
            "str",
            [],
            "URLs",
            "Enter one or more URLs to crawl recursively.",
            is_list=True,
            input_types=("Message",),
        ),
        Input(
            "max_depth",
            "int",
            1,
            "Depth",
            "How many link levels to follow (1 = the pages themselves).",
        ),
        Input("prevent_outside", "bool", True, "Prevent Outside", advanced=True),
        Input("use_async", "bool", True, "Use Async", advanced=True),
        Input("format", "str", "Text", "Output Format", options=("Text", "HTML"), advanced=True),
        Input("timeout", "int", 30, "Timeout", advanced=True),
        Input("headers", "table", [], "Headers", advanced=True),
        Input("filter_text_html", "bool", True, "Filter Text/HTML", advanced=True),
        Input("continue_on_failure", "bool", True, "Continue on Failure", advanced=True),
        Input("check_response_status", "bool", False, "Check Response Status", advanced=True),
        Input("autoset_encoding", "bool", True, "Autoset Encoding", advanced=True),
        Input("follow_redirects", "bool", True, "Follow Redirects", advanced=True),
    )
    outputs = (
        Output("page_results", ("Table", "DataFrame"), "Extracted Pages", "fetch_content"),
        Output("raw_results", ("Message",), "Raw Content", "fetch_content_as_message"),
        COMPONENT_AS_TOOL,
    )

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        urls = _url_list(params.get("urls"))
        if not urls:
            raise Invalid("no URL given: set 'urls'")
        pages = await self._crawl(ctx, params, urls)
        outputs: dict[str, Any] = {"page_results": pages}
        if "raw_results" in ctx.wanted:
            outputs["raw_results"] = Message(
                text="\n\n".join(p.data.get("text", "") for p in pages),
                session_id=ctx.run.session_id,
                flow_id=ctx.run.flow_id,
            )
        return outputs

    async def _crawl(
        self, ctx: NodeContext, params: Mapping[str, Any], urls: list[str]
    ) -> list[Data]:
        depth = max(1, int(params.get("max_depth") or 1))
        seen: set[str] = set()
        pages: list[Data] = []
        frontier = [(u, urlsplit(u).netloc) for u in urls]
        async with http_client(ctx) as client:
            for level in range(depth):
                next_frontier: list[tuple[str, str]] = []
                for url, root in frontier:
                    url = urldefrag(url)[0]
                    if url in seen or len(pages) >= MAX_PAGES:
                        continue
                    seen.add(url)
                    page, links = await self._fetch(ctx, client, params, url)
                    pages.append(page)
                    if level + 1 < depth:
                        for link in links:
                            target = urljoin(url, link)
                            outside = urlsplit(target).netloc != root
                            if target.startswith("http") and not (
                                params.get("prevent_outside", True) and outside
                            ):
                                next_frontier.append((target, root))
                frontier = next_frontier
        return pages

    async def _fetch(
        self, ctx: NodeContext, client: httpx.AsyncClient, params: Mapping[str, Any], url: str
    ) -> tuple[Data, list[str]]:
        try:
            response, body = await guarded_request(
                client,
                "GET",
                url,
                allow=Allowlist.of(ctx),
                headers=table_pairs(params.get("headers")),
                time_limit=float(params.get("timeout") or 30),
                follow_redirects=bool(params.get("follow_redirects", True)),
            )
            if params.get("check_response_status") and response.status_code >= 400:
                raise Invalid(f"{url} answered HTTP {response.status_code}")
        except PoolExhausted:
            raise  # this server is out of connections, not the page at fault: a 503
        except FlowserveError as exc:
            if not params.get("continue_on_failure", True):
                raise
            return Data(
                {"text": f"Error fetching {url}: {exc.detail}", "url": url, "error": exc.detail}
            ), []
        content_type = response.headers.get("content-type", "")
        markup = body.decode(response.encoding or "utf-8", errors="replace")
        if "html" not in content_type and "<html" not in markup[:1000].lower():
            return Data({"text": markup, "url": url, "title": "", "content_type": content_type}), []
        text, title, description, links = html_to_text(markup)
        content = markup if params.get("format") == "HTML" else text
        return Data(
            {
                "text": content,
                "url": url,
                "title": title,
                "description": description,
                "content_type": content_type,
            }
        ), links


class APIRequest(ToolComponent):
    type_name = "APIRequest"
    display_name = "API Request"
    description = "Make HTTP requests using URL or cURL commands."
    category = "data_source"
    icon = "Globe"
    tool_output = "data"
    tool_name = "make_api_request"
    tool_args = ("url_input",)
    inputs = (
        Input(
            "url_input",
            "str",
            "",
            "URL",
            "Enter the URL for the request.",
            input_types=("Message",),
        ),
        Input("method", "str", "GET", "Method", options=("GET", "POST", "PATCH", "PUT", "DELETE")),
        Input("mode", "str", "URL", "Mode", options=("URL", "cURL")),
        Input("curl_input", "str", "", "cURL", advanced=True),
        Input("query_params", "any", {}, "Query Parameters", advanced=True),
        Input(
            "body", "any", [], "Body", "The body to send with the request (JSON).", advanced=True
        ),
        Input("headers", "table", [], "Headers", advanced=True),
        Input("timeout", "int", 30, "Timeout", advanced=True),
        Input("follow_redirects", "bool", True, "Follow Redirects", advanced=True),
        Input("save_to_file", "bool", False, "Save to File", advanced=True),
        Input("include_httpx_metadata", "bool", False, "Include HTTPx Metadata", advanced=True),
    )
    outputs = (
        Output("data", ("Data", "JSON"), "API Response", "make_api_request"),
        COMPONENT_AS_TOOL,
    )

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("mode") == "cURL":
            raise Invalid("cURL mode is not supported; use URL mode with method, headers and body")
        url = _normalise_url(
            str(getattr(params.get("url_input"), "text", None) or params.get("url_input") or "")
        )
        if not url:
            raise Invalid("no URL given: set 'url_input'")
        method = str(params.get("method") or "GET").upper()
        headers = table_pairs(params.get("headers"))
        content = _body(params.get("body")) if method in ("POST", "PUT", "PATCH") else None
        if content is not None:
            headers.setdefault("Content-Type", "application/json")
        async with http_client(ctx) as client:
            response, raw = await guarded_request(
                client,
                method,
                url,
                allow=Allowlist.of(ctx),
                headers=headers,
                content=content,
                params=table_pairs(params.get("query_params")) or None,
                time_limit=float(params.get("timeout") or 30),
                follow_redirects=bool(params.get("follow_redirects", True)),
            )
        result: Any
        try:
            result = msgspec.json.decode(raw) if raw else ""
        except (msgspec.DecodeError, UnicodeError):  # not JSON, or not UTF-8: keep it as text
            result = raw.decode(response.encoding or "utf-8", errors="replace")
        data: dict[str, Any] = {
            "source": url,
            "status_code": response.status_code,
            "result": result,
        }
        if params.get("include_httpx_metadata"):
            data["response_headers"] = dict(response.headers)
        return {"data": Data(data)}


def _body(value: Any) -> bytes | None:
    if value in (None, "", [], {}):
        return None
    if isinstance(value, Data):
        value = value.data
    if isinstance(value, list) and all(isinstance(r, dict) and "key" in r for r in value):
        value = {str(r["key"]): r.get("value") for r in value}
    if isinstance(value, str):
        text: str = value
        try:
            value = msgspec.json.decode(text)
        except (msgspec.DecodeError, UnicodeError):
            return text.encode(errors="replace")
    encoded: bytes = msgspec.json.encode(value)
    return encoded
