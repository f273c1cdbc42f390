"""``/metrics``: Prometheus exposition of this instance's metrics.

Public on the instance (scrapers reach replicas directly); the shipped nginx
configuration refuses it from outside, so it is not on the public URL.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from flowserve.api.spec import Operation
from flowserve.errors import NotFound
from flowserve.metrics import Metrics


async def metrics(request: Request) -> Response:
    if not request.app.state.settings.metrics:
        raise NotFound("Metrics are disabled (FLOWSERVE_METRICS=false)")
    registry: Metrics = request.app.state.metrics
    body, content_type = registry.render()
    return Response(body, media_type=content_type)


OPERATIONS = [
    Operation(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics of this instance",
        scope="public",
        tag="health",
        responses={200: None},
        streams={200: "text/plain"},
    ),
]
