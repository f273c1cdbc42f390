"""Absolute links to this service as its users reach it (behind proxies and prefixes).

``FLOWSERVE_PUBLIC_URL`` (e.g. ``https://flows.example.com/flowserve``) wins
when set: it is what users type, whatever the proxies in between do. Without
it the base is rebuilt from the request: the scheme (``X-Forwarded-Proto``,
honoured only from ``FLOWSERVE_FORWARDED_ALLOW_IPS``), the ``Host`` header the
proxy passed on, and the root path (``FLOWSERVE_ROOT_PATH``). Use
``absolute_url`` for webhook URLs, code snippets and anything else a user
copies.
"""

from __future__ import annotations

from starlette.requests import Request


def public_base_url(request: Request) -> str:
    """The service's base URL without a trailing slash, e.g. ``https://host/prefix``."""
    configured: str = request.app.state.settings.public_url
    if configured:
        return configured.rstrip("/")
    scheme = request.scope.get("scheme", "http")
    host = request.headers.get("host")
    if not host:
        server = request.scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{scheme}://{host}{root}"


def absolute_url(request: Request, path: str) -> str:
    """``path`` (starting with ``/``, relative to the API root) as a public absolute URL."""
    return public_base_url(request) + "/" + path.lstrip("/")
