"""``GET /api/v1/flows/{flow}/snippets`` and ``.../export``: code to run a flow, and the flow.

Snippets are built from the public base URL (``FLOWSERVE_PUBLIC_URL``, else
the URL the request came in on), the flow's endpoint name or id and its
tweakable fields. Export answers the Langflow-importable document
(``format=json``) or a standalone Python script running the flow in-process
(``format=python``), as a download.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation, Param
from flowserve.api.wire import JSONResponse
from flowserve.errors import Invalid
from flowserve.export import export_document, export_filename, python_script
from flowserve.runner import Runner
from flowserve.snippets import DEFAULT_INPUT, Snippets, build_snippets

_MAX_INPUT = 10_000


def public_base_url(request: Request) -> str:
    """Where clients reach this server: the configured public URL, else the request's."""
    configured: str = request.app.state.settings.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


async def flow_snippets(request: Request) -> Response:
    runner: Runner = request.app.state.services.runner
    input_value = request.query_params.get("input_value", DEFAULT_INPUT)
    if len(input_value) > _MAX_INPUT:
        raise Invalid(f"input_value is longer than {_MAX_INPUT} characters")
    graph, record = await runner.graph(request.path_params["flow"])
    return JSONResponse(
        build_snippets(graph, record, public_base_url(request), input_value=input_value)
    )


async def export_flow(request: Request) -> Response:
    runner: Runner = request.app.state.services.runner
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "python"):
        raise Invalid(f"format must be 'json' or 'python', not '{fmt}'")
    graph, record = await runner.graph(request.path_params["flow"])
    if fmt == "python":
        filename = export_filename(record, ".py")
        return Response(
            python_script(record, graph),
            media_type="text/x-python; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    filename = export_filename(record, ".json")
    return JSONResponse(
        export_document(record),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


_FLOW = Param("flow", "path", "Flow UUID or endpoint name", required=True)
_ERRORS: dict[int, Any] = {401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 422: ErrorBody}

OPERATIONS = [
    Operation(
        "GET",
        "/api/v1/flows/{flow}/snippets",
        flow_snippets,
        "Code that runs the flow: curl, Python (requests, flowserve client), JavaScript",
        scope="read",
        tag="flows",
        responses={200: Snippets, **_ERRORS},
        params=(
            _FLOW,
            Param(
                "input_value",
                "query",
                "The input the snippets send",
                {"type": "string", "default": DEFAULT_INPUT},
            ),
        ),
    ),
    Operation(
        "GET",
        "/api/v1/flows/{flow}/export",
        export_flow,
        "Download the flow: Langflow-importable JSON, or a Python script that runs it in-process",
        scope="read",
        tag="flows",
        responses={200: dict[str, Any], **_ERRORS},
        streams={200: "text/x-python"},
        params=(
            _FLOW,
            Param(
                "format",
                "query",
                "json: the flow document; python: a standalone script",
                {"type": "string", "enum": ["json", "python"], "default": "json"},
            ),
        ),
    ),
]
