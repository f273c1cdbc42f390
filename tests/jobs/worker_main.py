"""``flowserve worker`` with the test registry (the stand-in Webhook and a slow component)."""

from __future__ import annotations

import asyncio

from flowserve.cli import run_worker
from flowserve.logs import configure_logging
from flowserve.settings import Settings
from tests.jobs.support import webhook_registry

if __name__ == "__main__":
    settings = Settings.from_env()
    configure_logging(settings.log_level, json=settings.log_json)
    asyncio.run(run_worker(settings, webhook_registry()))
