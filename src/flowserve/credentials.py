"""Who is calling: turn request headers into a ``Principal`` or refuse with ``Unauthorized``.

The interface is one callable, ``Authenticator``: ``await authenticate(headers)``
returns the caller or raises ``Unauthorized`` (401). Keys are read from
``x-api-key`` or ``Authorization: Bearer <key>``. ``Services.authenticate``
holds the one in use; the MCP endpoints call it on every HTTP request.

``bootstrap_authenticator(settings)`` is the default until a key store exists:

- ``FLOWSERVE_AUTH=off``: everyone is let in as the ``anonymous`` principal.
- auth on and ``FLOWSERVE_API_KEY`` (or ``LANGFLOW_API_KEY``) set: that one
  key is accepted (compared in constant time), as principal ``bootstrap``
  with every scope.
- auth on and no key configured: nothing is accepted.

A key store replaces it with an ``Authenticator`` that looks keys up and
reports their scopes; callers check ``principal.allows(scope)``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from flowserve.errors import Forbidden, Unauthorized
from flowserve.settings import Settings

ALL_SCOPES: frozenset[str] = frozenset({"read", "execute", "write", "admin"})

API_KEY_HEADER = "x-api-key"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a stable id (never the key itself) and what it may do."""

    id: str
    scopes: frozenset[str] = ALL_SCOPES

    def allows(self, scope: str) -> bool:
        return scope == "public" or scope in self.scopes or "admin" in self.scopes

    def require(self, scope: str) -> None:
        if not self.allows(scope):
            raise Forbidden(f"This API key lacks the '{scope}' scope")


Authenticator = Callable[[Mapping[str, str]], Awaitable[Principal]]

ANONYMOUS = Principal("anonymous")


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: ``x-api-key``, else a Bearer token. Header names are lowercase."""
    key = headers.get(API_KEY_HEADER)
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def bootstrap_authenticator(settings: Settings) -> Authenticator:
    if settings.auth == "off":

        async def anyone(headers: Mapping[str, str]) -> Principal:
            return ANONYMOUS

        return anyone

    expected = settings.api_key.encode()

    async def bootstrap_key(headers: Mapping[str, str]) -> Principal:
        key = presented_key(headers)
        if key is None:
            raise Unauthorized(
                "An API key is required: send it in the x-api-key header or as a Bearer token"
            )
        if not expected or not hmac.compare_digest(key.encode(), expected):
            raise Unauthorized("Invalid API key")
        return Principal("bootstrap")

    return bootstrap_key
