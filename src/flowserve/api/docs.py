"""``/docs``: Swagger UI over our OpenAPI document, with assets served locally (no CDN)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from flowserve.api.links import public_base_url
from flowserve.api.spec import Operation
from flowserve.api.wire import JSONResponse

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>flowserve API</title>
  <link rel="stylesheet" href="{root}/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{root}/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{root}/openapi.json", dom_id: "#swagger-ui",
      persistAuthorization: true}});
  </script>
</body>
</html>
"""


async def docs_page(request: Request) -> Response:
    root = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(_PAGE.format(root=root))


async def openapi_document(request: Request) -> Response:
    # The served document names where it is served, so "Try it out" works behind
    # a proxy, under a root path and over TLS terminated at the proxy.
    return JSONResponse(
        {**request.app.state.openapi, "servers": [{"url": public_base_url(request)}]}
    )


OPERATIONS = [
    Operation(
        "GET",
        "/docs",
        docs_page,
        "API documentation (Swagger UI)",
        scope="public",
        tag="docs",
        include_in_schema=False,
    ),
    Operation(
        "GET",
        "/openapi.json",
        openapi_document,
        "This OpenAPI document",
        scope="public",
        tag="docs",
        include_in_schema=False,
    ),
]
