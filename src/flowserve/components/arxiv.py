"""arXiv: search papers through arXiv's Atom API, one row per paper.

The endpoint is the operator's setting (``FLOWSERVE_ARXIV_URL``, arXiv's public
API by default) and goes through the outbound SSRF guard over the shared
client. Where Langflow returns a row holding the error, this component fails
the run with a 502 naming itself: an unreachable arXiv should not look like a
search that found a paper called "error".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from flowserve.components.outbound import Allowlist, guarded_request, http_client
from flowserve.components.search import service_url, xml_root
from flowserve.components.tools import COMPONENT_AS_TOOL, ToolComponent
from flowserve.engine.component import Input, NodeContext, Output
from flowserve.engine.types import Data, to_text
from flowserve.errors import Invalid, UpstreamError

ARXIV_SERVICE = "arxiv_url"
DEFAULT_ARXIV_URL = "https://export.arxiv.org/api/query"
MAX_RESULTS = 200
TIMEOUT = 30.0
_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_PREFIXES = {"title": "ti", "abstract": "abs", "author": "au", "cat": "cat"}


def parse_arxiv(document: bytes) -> list[dict[str, Any]]:
    """The papers of an arXiv Atom answer, with Langflow's column names."""
    root = xml_root(document, "arXiv answer")
    if root.tag != f"{_ATOM}feed":
        raise UpstreamError(f"arXiv answered a <{root.tag}> document, not an Atom feed")
    return [_paper(entry) for entry in root.iter(f"{_ATOM}entry")]


def _text(entry: ET.Element, path: str) -> str | None:
    found = entry.find(path)
    return found.text.strip() if found is not None and found.text else None


def _link(entry: ET.Element, rel: str) -> str | None:
    for link in entry.iter(f"{_ATOM}link"):
        if link.get("rel") == rel:
            return link.get("href")
    return None


def _paper(entry: ET.Element) -> dict[str, Any]:
    primary = entry.find(f"{_ARXIV}primary_category")
    return {
        "id": _text(entry, f"{_ATOM}id"),
        "title": _text(entry, f"{_ATOM}title"),
        "summary": _text(entry, f"{_ATOM}summary"),
        "published": _text(entry, f"{_ATOM}published"),
        "updated": _text(entry, f"{_ATOM}updated"),
        "authors": [
            (a.findtext(f"{_ATOM}name") or "").strip() for a in entry.iter(f"{_ATOM}author")
        ],
        "arxiv_url": _link(entry, "alternate"),
        "pdf_url": _link(entry, "related"),
        "comment": _text(entry, f"{_ARXIV}comment"),
        "journal_ref": _text(entry, f"{_ARXIV}journal_ref"),
        "primary_category": primary.get("term") if primary is not None else None,
        "categories": [c.get("term") for c in entry.iter(f"{_ATOM}category")],
    }


class ArXivComponent(ToolComponent):
    type_name = "ArXivComponent"
    display_name = "arXiv"
    description = "Search and retrieve papers from arXiv.org."
    category = "arxiv"
    icon = "arXiv"
    tool_output = "dataframe"
    tool_name = "search_papers"
    tool_args = ("search_query",)
    inputs = (
        Input(
            "search_query",
            "str",
            "",
            "Search Query",
            "The search query for arXiv papers (e.g., 'quantum computing')",
            input_types=("Message",),
        ),
        Input(
            "search_type",
            "str",
            "all",
            "Search Field",
            "The field to search in",
            options=("all", "title", "abstract", "author", "cat"),
        ),
        Input("max_results", "int", 10, "Max Results", "Maximum number of results to return"),
    )
    outputs = (
        Output("dataframe", ("Table", "DataFrame"), "Table", "search_papers_dataframe"),
        COMPONENT_AS_TOOL,
    )

    async def produce(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        query = to_text(params.get("search_query")).strip()
        if not query:
            raise Invalid("no search query given: set 'search_query'")
        field = str(params.get("search_type") or "all")
        if field != "all":
            if field not in _PREFIXES:
                raise Invalid(f"search_type must be one of all, {', '.join(_PREFIXES)}")
            query = f"{_PREFIXES[field]}:{query}"
        try:
            wanted = int(params.get("max_results") or 10)
        except (TypeError, ValueError) as exc:
            raise Invalid("max_results must be a whole number") from exc
        limit = max(1, min(wanted, MAX_RESULTS))
        url = service_url(ctx, ARXIV_SERVICE, DEFAULT_ARXIV_URL)
        async with http_client(ctx) as client:
            response, body = await guarded_request(
                client,
                "GET",
                url,
                allow=Allowlist.of(ctx),
                params={"search_query": query, "max_results": str(limit)},
                time_limit=TIMEOUT,
            )
        if response.status_code != 200:
            raise UpstreamError(f"arXiv answered HTTP {response.status_code}")
        papers = parse_arxiv(body)[:limit]
        return {"dataframe": [Data(paper) for paper in papers]}
