"""Bodies in and out at the HTTP boundary: bounded reads, msgspec decode/encode."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve.errors import Invalid, PayloadTooLarge, UnsupportedEncoding
from flowserve.flowfile.parser import JSON_ERRORS, malformed_json

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class JSONResponse(Response):
    """A response encoded by msgspec (Structs and builtins), much faster than json."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def attachment(filename: str) -> dict[str, str]:
    """A ``Content-Disposition`` header for a download named ``filename`` (RFC 6266):
    an ASCII fallback any client reads, and the exact name UTF-8 encoded. Names come
    from users: no quote, control character or non-Latin-1 text reaches the header raw."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    exact = quote(filename, safe="")
    return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"}


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


async def read_body(request: Request) -> bytes:
    """The request body, refusing more than the configured maximum with a 413.

    The size is counted as the body arrives, so a body that declares no length (or a
    false one) is refused after ``max_body_bytes``, never held whole. A compressed
    body (``Content-Encoding: gzip`` ...) is refused with a 415 before any of it is
    read: inflating it would make the limit meaningless (a small gzip bomb), and
    Langflow does not inflate request bodies either.
    """
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding[:40]!r} is not supported: send the body uncompressed"
        )
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(body: bytes, type_: type[T], *, empty: T | None = None) -> T:
    """Decode a JSON body into a Struct: 400 when it is not JSON, 422 when it does not fit."""
    if not body.strip():
        if empty is not None:
            return empty
        raise Invalid("A JSON request body is required")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise Invalid(f"Invalid request body: {exc}") from exc
    except JSON_ERRORS as exc:
        raise malformed_json("Malformed JSON body", exc) from exc
