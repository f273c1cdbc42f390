"""``/playground/{flow_id}`` (and Langflow's ``/public_flow/{flow_id}``): a chat page for a
PUBLIC flow, to share with people who have no API key.

The page is a little HTML, CSS and vanilla JavaScript packaged in ``api/assets/``
(nothing from a CDN, no fonts from elsewhere). The script chats through the
streaming run API (``POST /api/v1/run/{flow}?stream=true``), which already lets
anonymous callers run PUBLIC flows, rate limited per client address; the page
itself counts against the same limit (with auth on, as runs do). A private flow
gets the same 404 as an unknown one, so its existence does not leak. A strict
Content-Security-Policy allows only this server's own script, style and API;
the script puts model output in the page as text, never as HTML.
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from importlib import resources
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from flowserve.access import Access
from flowserve.api.auth import client_address
from flowserve.api.links import public_base_url
from flowserve.api.spec import Operation
from flowserve.errors import FlowNotFound, NotFound

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_ASSET_TYPES = {
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
# Asset URLs carry a digest of the assets (?v=...), so browsers may keep them a day.
_ASSET_CACHE = "public, max-age=86400"


@cache
def _asset(name: str) -> bytes:
    return resources.files("flowserve.api").joinpath("assets", name).read_bytes()


@cache
def _version() -> str:
    digest = hashlib.sha256()
    for name in sorted(_ASSET_TYPES):
        digest.update(_asset(name))
    return digest.hexdigest()[:12]


async def playground_page(request: Request) -> Response:
    ref = request.path_params["flow_id"]
    access: Access = request.app.state.services.access
    if access.enabled:
        await access.limit_client(client_address(request))
    record = await request.app.state.services.flows.get(ref)
    if record is None or record.access_type != "PUBLIC":
        raise FlowNotFound(ref)
    # Same-origin paths (the API's root behind a proxy), so 'self' in the CSP covers them.
    root = urlsplit(public_base_url(request)).path.rstrip("/")
    page = _asset("playground.html").decode("utf-8")
    body = page.format(
        root=html.escape(root),
        version=_version(),
        title=html.escape(record.name or "Playground"),
        description=html.escape(record.description or ""),
        flow_id=html.escape(record.id),
        run_url=html.escape(f"{root}/api/v1/run/{quote(record.id, safe='')}?stream=true"),
    )
    return HTMLResponse(body, headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"})


async def playground_asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = _ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"No playground asset {name}")
    return Response(
        _asset(name),
        media_type=media_type,
        headers={**_SECURITY_HEADERS, "Cache-Control": _ASSET_CACHE},
    )


OPERATIONS = [
    Operation(
        "GET",
        "/playground/{flow_id}",
        playground_page,
        "A chat page for a PUBLIC flow (HTML), usable without an API key",
        scope="public",
        tag="playground",
        include_in_schema=False,
    ),
    Operation(
        "GET",
        "/public_flow/{flow_id}",
        playground_page,
        "The playground at Langflow's shareable path for PUBLIC flows (HTML)",
        scope="public",
        tag="playground",
        include_in_schema=False,
    ),
    Operation(
        "GET",
        "/playground/assets/{name}",
        playground_asset,
        "The playground's script and style sheet",
        scope="public",
        tag="playground",
        include_in_schema=False,
    ),
]
