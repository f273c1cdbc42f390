"""The Starlette application factory: routes, middleware, and the lifespan that owns pools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware

from flowserve.api.errors import EXCEPTION_HANDLERS
from flowserve.api.middleware import RequestContextMiddleware
from flowserve.api.openapi import build_spec
from flowserve.api.routes import OPERATIONS, build_routes
from flowserve.bootstrap import open_services
from flowserve.engine import Registry
from flowserve.settings import Settings

log = structlog.get_logger(__name__)


def create_app(settings: Settings, *, registry: Registry | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, registry=registry) as services:
            app.state.services = services
            log.info(
                "started",
                backend="embedded" if settings.embedded else "postgres+redis",
                flows_dir=settings.flows_dir,
            )
            yield
        log.info("stopped")

    app = Starlette(
        routes=build_routes(),
        middleware=[Middleware(RequestContextMiddleware, access_log=settings.access_log)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.openapi = build_spec(OPERATIONS)
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn worker processes (``--workers N``): settings from the environment."""
    from flowserve.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)
