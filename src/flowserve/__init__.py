"""flowserve: serve Langflow flows over Langflow's HTTP API, fast and headless.

``flowserve.run_flow("flow.json", input_value=...)`` runs a flow in this
process, without a server (``arun_flow`` is its async form);
``flowserve.client`` talks to a server.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowserve.embedded import arun_flow, run_flow

try:
    __version__ = version("flowserve")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

LANGFLOW_API_VERSION = "1.13.0"

__all__ = ["LANGFLOW_API_VERSION", "__version__", "arun_flow", "run_flow"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the engine is not needed to serve, or by the client.
    if name in ("run_flow", "arun_flow"):
        from flowserve import embedded

        return getattr(embedded, name)
    raise AttributeError(f"module 'flowserve' has no attribute {name!r}")
