"""Every operation of the API, and the Starlette routes built from them."""

from __future__ import annotations

from collections.abc import Sequence

import swagger_ui_bundle
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from flowserve.api import (
    docs,
    files,
    flows,
    keys,
    logs,
    mcp,
    meta,
    ops,
    playground,
    projects,
    run,
    sessions,
    snippets,
    subscriptions,
    webhooks,
    workflows,
)
from flowserve.api.auth import guard
from flowserve.api.spec import Operation

OPERATIONS: list[Operation] = [
    *run.OPERATIONS,
    *meta.OPERATIONS,
    *docs.OPERATIONS,
    *mcp.OPERATIONS,
    *flows.OPERATIONS,
    *projects.OPERATIONS,
    *sessions.OPERATIONS,
    *keys.OPERATIONS,
    *webhooks.OPERATIONS,
    *subscriptions.OPERATIONS,
    *ops.OPERATIONS,
    *snippets.OPERATIONS,
    *files.OPERATIONS,
    *workflows.OPERATIONS,
    *logs.OPERATIONS,
    *playground.OPERATIONS,
]


def build_routes(operations: Sequence[Operation] = OPERATIONS) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route(op.path, guard(op), methods=[op.method], name=f"{op.method} {op.path}")
        for op in operations
    ]
    routes.append(
        Mount(
            "/docs/static",
            StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
            name="docs-static",
        )
    )
    return routes
