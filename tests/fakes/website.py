"""A small web site on loopback for URL, API Request and Web Search tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.server import ThreadedServer

PAGE = """<html><head><title>Flowserve facts</title>
<meta name="description" content="Facts page"><style>body {color: red}</style></head>
<body><h1>Facts</h1><p>The secret number is 4217.</p><script>var x = 1;</script>
<a href="/second">second page</a></body></html>"""
SECOND = "<html><body><p>Second page says hello.</p></body></html>"


def _results(request: Request) -> HTMLResponse:
    query = request.query_params.get("q", "")
    base = str(request.base_url).rstrip("/")
    target = f"{base}/page"
    rows = "".join(
        f'<div class="result"><a class="result__a" href="/l/?uddg={target}&n={i}">Result {i} '
        f'for {query}</a><a class="result__snippet">Snippet {i} about {query}</a></div>'
        for i in range(1, 4)
    )
    return HTMLResponse(f"<html><body>{rows}</body></html>")


def _news(request: Request) -> Response:
    query = request.query_params.get("q", "")
    items = "".join(
        f"<item><title>News {i}: {query}</title><link>https://example.org/{i}</link>"
        f"<pubDate>Mon, 23 Nov 2026 0{i}:00:00 GMT</pubDate>"
        f"<description>&lt;b&gt;Story {i}&lt;/b&gt; hl={request.query_params.get('hl')}"
        "</description></item>"
        for i in range(1, 4)
    )
    xml = f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'
    return Response(xml, media_type="application/rss+xml")


def _atom(_: Request) -> Response:
    xml = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title>
<entry><title>First post</title><link href="https://example.org/first"/>
<updated>2026-11-01T00:00:00Z</updated><summary>Hello &lt;i&gt;world&lt;/i&gt;</summary></entry>
</feed>"""
    return Response(xml, media_type="application/atom+xml")


def _evil_feed(_: Request) -> Response:
    xml = """<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>
<rss><channel><item><title>&lol;</title></item></channel></rss>"""
    return Response(xml, media_type="application/rss+xml")


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "query": dict(request.query_params),
            "body": json.loads(body) if body else None,
            "x_token": request.headers.get("x-token"),
        }
    )


def build_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/page", lambda r: HTMLResponse(PAGE)),
            Route("/second", lambda r: HTMLResponse(SECOND)),
            Route("/search", _results),
            Route("/news", _news),
            Route("/feed.atom", _atom),
            Route("/evil.rss", _evil_feed),
            Route("/echo", _echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/to-metadata", lambda r: RedirectResponse("http://169.254.169.254/latest/")),
            Route("/to-page", lambda r: RedirectResponse("/page")),
            Route("/big", lambda r: Response(b"x" * (6 * 1024 * 1024))),
            Route("/missing", lambda r: Response("nope", status_code=404)),
            Route(
                "/not-utf8",
                lambda r: Response(b'{"name": "caf\xe9"}', media_type="application/json"),
            ),
        ]
    )


@pytest.fixture(scope="session")
def website() -> Iterator[ThreadedServer]:
    server = ThreadedServer(build_app()).start()
    yield server
    server.stop()
