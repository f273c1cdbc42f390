"""The OpenAPI document, generated from the operations and their msgspec Structs.

``python -m flowserve.api.openapi`` prints it; ``make openapi`` writes it to
``openapi/openapi.json``, and a test fails when that file is stale.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from typing import Any

import msgspec

from flowserve import __version__
from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation

_REF = "#/components/schemas/{name}"

API_KEY_SCHEMES = {
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "APIKeyQuery": {"type": "apiKey", "in": "query", "name": "x-api-key"},
    "BearerAuth": {"type": "http", "scheme": "bearer"},
}


def build_spec(operations: Iterable[Operation]) -> dict[str, Any]:
    ops = [op for op in operations if op.include_in_schema]
    types: list[Any] = []
    for op in ops:
        if op.request is not None:
            types.append(op.request)
        types.extend(t for t in _responses(op).values() if t is not None)
    unique = list(dict.fromkeys(types))
    schemas, components = msgspec.json.schema_components(unique, ref_template=_REF)
    by_type = dict(zip(unique, schemas, strict=True))

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, by_type)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flowserve",
            "version": __version__,
            "description": "Langflow-compatible API for serving flows. Authenticate with an "
            "API key in the x-api-key header or query parameter, or as a "
            "Bearer token.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {name: _clean_doc(components[name]) for name in sorted(components)},
            "securitySchemes": API_KEY_SCHEMES,
        },
    }


def _clean_doc(schema: dict[str, Any]) -> dict[str, Any]:
    """A Struct's docstring as its description, dedented the same way whichever msgspec
    release made the schema (0.23 changed how it strips a docstring's indentation)."""
    description = schema.get("description")
    if isinstance(description, str):
        return {**schema, "description": inspect.cleandoc(description)}
    return schema


def _operation(op: Operation, by_type: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method.lower()}_{op.endpoint.__name__}",
        "tags": [op.tag],
    }
    if op.scope == "public":
        doc["security"] = []
    else:
        doc["security"] = [{name: []} for name in API_KEY_SCHEMES]
        doc["x-required-scope"] = op.scope
    if op.params:
        doc["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in op.params
        ]
    if op.request is not None:
        doc["requestBody"] = {
            "required": False,
            "content": {op.content_type: {"schema": by_type[op.request]}},
        }
    responses: dict[str, Any] = {}
    for status, type_ in sorted(_responses(op).items()):
        content: dict[str, Any] = {}
        if type_ is not None:
            content["application/json"] = {"schema": by_type[type_]}
        if status in op.streams:
            content[op.streams[status]] = {"schema": {"type": "string"}}
        entry: dict[str, Any] = {"description": _DESCRIPTIONS.get(status, "Response")}
        if content:
            entry["content"] = content
        responses[str(status)] = entry
    doc["responses"] = responses
    return doc


def _responses(op: Operation) -> dict[int, Any]:
    """The operation's responses plus the failures every such route can answer: a body
    that is not valid JSON (400, ``api/wire.decode``), too large (413) or compressed
    (415, ``api/wire.read_body``) and, when guarded, auth ones."""
    body_errors: dict[int, Any] = (
        {400: ErrorBody, 413: ErrorBody, 415: ErrorBody} if op.request is not None else {}
    )
    if op.scope == "public":
        return {**body_errors, **op.responses}
    return {401: ErrorBody, 403: ErrorBody, 429: ErrorBody, **body_errors, **op.responses}


_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Malformed request",
    401: "Missing or unknown API key",
    403: "Not allowed for this key",
    404: "Not found",
    409: "Conflict",
    413: "Request body too large",
    415: "Compressed request body (send it uncompressed)",
    422: "Invalid request",
    429: "Rate limited",
    500: "Internal or component error",
    502: "Upstream provider error",
    503: "A store is unavailable",
    504: "Run timed out",
}


def spec_json() -> bytes:
    from flowserve.api.routes import OPERATIONS

    return msgspec.json.format(msgspec.json.encode(build_spec(OPERATIONS)), indent=2) + b"\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(spec_json())
