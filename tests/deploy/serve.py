"""``flowserve serve`` (the real CLI path: uvicorn config, proxy headers, graceful
shutdown) with the cross-process test components registered.

    python -m tests.deploy.serve --port 8000
"""

from __future__ import annotations

import sys
from functools import partial

import flowserve.app
from flowserve.cli import main
from tests.deploy.components import make_registry

flowserve.app.create_app = partial(flowserve.app.create_app, registry=make_registry())  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
