"""flowserve: serve Langflow flows over Langflow's HTTP API, fast and headless."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flowserve")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

LANGFLOW_API_VERSION = "1.13.0"
