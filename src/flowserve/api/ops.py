"""``/metrics``: Prometheus exposition of this instance's metrics.

Closed by default: it needs an admin key, or ``FLOWSERVE_METRICS_TOKEN`` sent
as ``Authorization: Bearer`` (what Prometheus should hold: it opens nothing
else). ``FLOWSERVE_METRICS_PUBLIC=true`` opens it to anyone who can reach the
instance, for networks where only the scraper can. The shipped nginx
configuration refuses it from outside either way.
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
        "Prometheus metrics of this instance (admin key, or the FLOWSERVE_METRICS_TOKEN bearer)",
        scope="admin",
        tag="health",
        anonymous="scraper",
        responses={200: None},
        streams={200: "text/plain"},
    ),
]
