"""The Starlette application factory: routes, middleware, and the lifespan that owns pools."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from flowserve.api.errors import EXCEPTION_HANDLERS
from flowserve.api.hot import HotRoutes
from flowserve.api.mcp import LazyMcp
from flowserve.api.middleware import RequestContextMiddleware
from flowserve.api.openapi import build_spec
from flowserve.api.routes import OPERATIONS, build_routes
from flowserve.bootstrap import Services, open_services
from flowserve.engine import Registry
from flowserve.errors import Unavailable
from flowserve.jobs import running_worker
from flowserve.lifecycle import open_when_ready
from flowserve.limits import RunSlots
from flowserve.logs import LOG_BUFFER
from flowserve.metrics import Metrics
from flowserve.settings import Settings, prometheus_multiproc_dir

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings, *, registry: Registry | None = None, serving: bool = False
) -> Starlette:
    """The app. ``serving``: this process only serves it (``flowserve serve``), so once
    started its garbage collector may be tuned for serving (see ``tune_gc``)."""
    mcp = LazyMcp(settings)
    # The log lines GET /logs answers: this process's, however many apps it serves.
    LOG_BUFFER.resize(settings.log_buffer_size)
    metrics = Metrics(multiprocess_dir=prometheus_multiproc_dir())
    run_slots = RunSlots(
        settings.max_concurrent_runs,
        retry_after=settings.overload_retry_after,
        gauge=metrics.shared_in_flight,
    )
    metrics.track_in_flight(lambda: run_slots.in_use)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            open_when_ready(
                lambda: open_services(settings, registry=registry, metrics=metrics),
                ready=_all_stores_ok,
                give_up_after=settings.startup_timeout,
            ) as services,
            mcp.run(services),
        ):
            app.state.services = services
            # Refuses to start with auth on and no key to authenticate with.
            await services.access.start()
            async with AsyncExitStack() as background:
                if settings.job_worker:
                    worker = services.jobs.worker(settings, services.runner, services.http)
                    await background.enter_async_context(running_worker(worker))
                if serving:
                    tune_gc()
                log.info(
                    "started",
                    backend="embedded" if settings.embedded else "postgres+redis",
                    flows_dir=settings.flows_dir,
                    jobs="redis" if services.jobs.durable else "in-process",
                )
                yield
        metrics.close()
        log.info("stopped")

    routes = build_routes()
    app = Starlette(
        routes=routes,
        middleware=[*_middleware(settings, metrics), Middleware(HotRoutes, routes=routes)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.mcp = mcp
    app.state.openapi = build_spec(OPERATIONS)
    app.state.metrics = metrics
    app.state.run_slots = run_slots
    return app


def _middleware(settings: Settings, metrics: Metrics) -> list[Middleware]:
    stack = [Middleware(RequestContextMiddleware, metrics=metrics, access_log=settings.access_log)]
    origins = settings.cors_origin_list
    if origins:
        # Off unless FLOWSERVE_CORS_ORIGINS lists origins: a headless API is called by
        # servers; browsers only from the front ends an operator names.
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["*"],
                expose_headers=["X-Request-ID", "Retry-After", "ETag"],
                allow_credentials=False,  # keys travel in headers, never cookies
                max_age=600,
            )
        )
    return stack


async def _all_stores_ok(services: Services) -> None:
    states = await services.health()
    down = {name: state for name, state in states.items() if state != "ok"}
    if down:
        raise Unavailable(", ".join(f"{name}: {state}" for name, state in down.items()))


def app_from_env() -> Starlette:
    """Factory for uvicorn worker processes (``--workers N``): settings from the environment."""
    from flowserve.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings, serving=True)


def tune_gc() -> None:
    """Keep the cyclic garbage collector off what lives as long as the process.

    Everything allocated by startup (imported modules, the OpenAPI spec, compiled
    graphs, pools: over 100k objects) never becomes garbage, yet every full
    collection walks it: 50-90 ms pauses under load, straight into p99. Frozen,
    those objects are skipped by every collection. A higher first threshold
    makes young collections rarer, so fewer in-flight requests' objects are
    promoted to the older generations only to die there.

    Measured at 2,000 LLM runs in flight (bench ``conc`` rows): the serving path
    makes no cyclic garbage, yet at a threshold of 10,000 young collections ran
    ten times a second, each walking the newest in-flight runs' objects, and
    the runs that outlived two of them reached the old generation, whose full
    collections took 250 ms; together a fifth of the process's CPU. At 250,000
    a young collection comes every few seconds; what cycles there are (error
    paths) still get collected, at worst 250,000 objects late.
    """
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, second, third)


# Allocations (minus deallocations) between young collections; CPython's default is 700.
GC_YOUNG_THRESHOLD = 250_000
