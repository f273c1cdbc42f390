"""The OpenAPI document tells clients how to authenticate and what each route needs."""

from __future__ import annotations

from pathlib import Path

from flowserve.api.openapi import build_spec, spec_json
from flowserve.api.routes import OPERATIONS

COMMITTED = Path(__file__).parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_document_is_current() -> None:
    assert COMMITTED.read_bytes() == spec_json(), "stale: run `make openapi`"


def test_every_guarded_operation_documents_its_scope_and_auth_failures() -> None:
    spec = build_spec(OPERATIONS)
    assert set(spec["components"]["securitySchemes"]) == {
        "APIKeyHeader",
        "APIKeyQuery",
        "BearerAuth",
    }
    for op in OPERATIONS:
        if not op.include_in_schema:
            continue
        doc = spec["paths"][op.path][op.method.lower()]
        if op.scope == "public":
            assert doc["security"] == [], op.path
            continue
        assert doc["x-required-scope"] == op.scope, op.path
        assert {"401", "403", "429"} <= set(doc["responses"]), op.path
