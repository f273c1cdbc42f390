"""A fake arXiv API (``/api/query``, Atom) on a real loopback port.

Answers ``min(max_results, papers)`` entries titled after the query, so tests
see what was asked. ``mode`` switches to broken answers: "status" (HTTP 503),
"garbage" (not XML), "html" (XML but no Atom feed), "entities" (a DTD bomb).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import ThreadedServer

_ENTRY = """<entry>
<id>http://arxiv.org/abs/2601.0000{i}v1</id>
<updated>2026-01-0{i}T00:00:00Z</updated><published>2026-01-0{i}T00:00:00Z</published>
<title>Paper {i} about {query}</title>
<summary>  Summary {i}: we study {query}.  </summary>
<author><name>Author {i}A</name></author><author><name>Author {i}B</name></author>
<arxiv:comment>{i} pages</arxiv:comment>
<link href="http://arxiv.org/abs/2601.0000{i}v1" rel="alternate" type="text/html"/>
<link title="pdf" href="http://arxiv.org/pdf/2601.0000{i}v1" rel="related" type="application/pdf"/>
<arxiv:primary_category term="cs.AI" scheme="http://arxiv.org/schemas/atom"/>
<category term="cs.AI"/><category term="cs.CL"/>
</entry>"""

_BOMB = """<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2
"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><feed xmlns="http://www.w3.org/2005/Atom">
<entry><title>&lol2;</title></entry></feed>"""


class FakeArxiv:
    def __init__(self, papers: int = 3) -> None:
        self.papers = papers
        self.mode = "ok"
        self.requests: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/api/query", self.query)])
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url + "/api/query"

    def start(self) -> FakeArxiv:
        self._server = ThreadedServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        self.mode = "ok"
        self.requests.clear()

    async def query(self, request: Request) -> Response:
        params: dict[str, Any] = dict(request.query_params)
        self.requests.append(params)
        if self.mode == "status":
            return Response("busy", status_code=503)
        if self.mode == "garbage":
            return Response("{not xml", media_type="application/atom+xml")
        if self.mode == "html":
            return Response("<html><body>hi</body></html>", media_type="text/html")
        if self.mode == "entities":
            return Response(_BOMB, media_type="application/atom+xml")
        query = escape(params.get("search_query", ""))
        count = min(int(params.get("max_results", "10")), self.papers)
        entries = "".join(_ENTRY.format(i=i, query=query) for i in range(1, count + 1))
        feed = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:arxiv="http://arxiv.org/schemas/atom"><title>arXiv Query</title>'
            f"{entries}</feed>"
        )
        return Response(feed, media_type="application/atom+xml")


@pytest.fixture(scope="session")
def _arxiv_server() -> Iterator[FakeArxiv]:
    server = FakeArxiv().start()
    yield server
    server.stop()


@pytest.fixture
def fake_arxiv(_arxiv_server: FakeArxiv) -> Iterator[FakeArxiv]:
    _arxiv_server.reset()
    yield _arxiv_server
    _arxiv_server.reset()
