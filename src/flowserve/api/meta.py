"""Metadata: version, config, the component catalogue, liveness and readiness."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from flowserve import LANGFLOW_API_VERSION, __version__
from flowserve.api.errors import ErrorBody
from flowserve.api.spec import Operation
from flowserve.api.wire import JSONResponse
from flowserve.bootstrap import Services
from flowserve.components import catalogue


class VersionInfo(msgspec.Struct):
    version: str
    main_version: str
    package: str
    langflow_api_version: str


class ConfigInfo(msgspec.Struct):
    """Langflow's ``/api/v1/config`` keys that mean something for a headless server."""

    feature_flags: dict[str, bool]
    max_file_size_upload: int
    event_delivery: str
    voice_mode_available: bool
    frontend_timeout: int
    mcp_base_url: str
    enable_extension_reload: bool
    authz_enabled: bool
    type: str
    serialization_max_items_length: int
    serialization_max_text_length: int
    auto_saving: bool
    auto_saving_interval: int
    health_check_max_retries: int
    webhook_polling_interval: int
    public_flow_cleanup_interval: int
    public_flow_expiration: int
    webhook_auth_enable: bool
    default_folder_name: str
    hide_getting_started_progress: bool
    allow_custom_components: bool
    embedded_mode: bool
    hide_logout_button: bool
    hide_new_project_button: bool
    hide_new_flow_button: bool
    hide_starter_projects: bool
    mcp_servers_locked: bool
    custom_component_admin_only: bool
    a2a_enabled: bool
    agentic_experience: bool
    assistant_max_message_length: int
    local_vector_store_available: bool
    default_vector_store_backend: str
    configured_vector_store_backends: list[str]
    blocked_component_types: list[str]
    catalog_governance_enabled: bool
    substitute_outdated_component_code: bool
    backend: str
    session_ttl: int


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    chat: str
    db: str
    stores: dict[str, str]


# Every flag Langflow 1.13 reports; none of those features exists in a headless server.
_FEATURE_FLAGS = dict.fromkeys(
    ("wxo_deployments", "mvp_components", "instance_migration", "data_subject_requests"), False
)

_VERSION = VersionInfo(__version__, __version__, "flowserve", LANGFLOW_API_VERSION)


async def version(request: Request) -> Response:
    return JSONResponse(_VERSION)


async def config(request: Request) -> Response:
    services: Services = request.app.state.services
    settings = services.settings
    return JSONResponse(
        ConfigInfo(
            feature_flags=_FEATURE_FLAGS,
            max_file_size_upload=settings.max_file_bytes // (1024 * 1024),
            event_delivery="streaming",
            voice_mode_available=False,
            frontend_timeout=0,
            mcp_base_url="",
            enable_extension_reload=False,
            authz_enabled=settings.auth == "on",
            type="headless",
            serialization_max_items_length=1000,
            serialization_max_text_length=6000,
            auto_saving=False,
            auto_saving_interval=0,
            health_check_max_retries=5,
            webhook_polling_interval=0,
            public_flow_cleanup_interval=0,
            public_flow_expiration=0,
            webhook_auth_enable=settings.webhook_auth,
            default_folder_name="Starter Project",
            hide_getting_started_progress=True,
            allow_custom_components=False,
            embedded_mode=False,
            hide_logout_button=True,
            hide_new_project_button=True,
            hide_new_flow_button=True,
            hide_starter_projects=True,
            mcp_servers_locked=True,
            custom_component_admin_only=True,
            a2a_enabled=False,
            agentic_experience=False,
            assistant_max_message_length=0,
            local_vector_store_available=False,
            default_vector_store_backend="",
            configured_vector_store_backends=[],
            blocked_component_types=[],
            catalog_governance_enabled=False,
            # Flow files' component code is never run, so never substituted either.
            substitute_outdated_component_code=False,
            backend="embedded" if settings.embedded else "postgres+redis",
            session_ttl=settings.session_ttl,
        )
    )


async def all_components(request: Request) -> Response:
    services: Services = request.app.state.services
    return JSONResponse(catalogue(services.registry))


async def health(request: Request) -> Response:
    return JSONResponse(Health("ok"))


async def health_check(request: Request) -> Response:
    services: Services = request.app.state.services
    stores = await services.health()
    ok = all(state == "ok" for state in stores.values())
    return JSONResponse(
        Readiness(
            status="ok" if ok else "error",
            chat=stores.get("messages", "ok"),
            db=stores.get("flows", "ok"),
            stores=stores,
        ),
        status_code=200 if ok else 503,
    )


_Catalogue = dict[str, dict[str, dict[str, Any]]]

OPERATIONS = [
    Operation(
        "GET",
        "/api/v1/version",
        version,
        "Server version",
        scope="public",
        tag="meta",
        responses={200: VersionInfo},
    ),
    Operation(
        "GET",
        "/api/v1/config",
        config,
        "Server configuration (Langflow's keys)",
        scope="read",
        tag="meta",
        responses={200: ConfigInfo, 401: ErrorBody},
    ),
    Operation(
        "GET",
        "/api/v1/all",
        all_components,
        "Catalogue of the components this server runs: category -> type -> spec",
        scope="read",
        tag="meta",
        responses={200: _Catalogue, 401: ErrorBody},
    ),
    Operation(
        "GET", "/health", health, "Liveness", scope="public", tag="health", responses={200: Health}
    ),
    Operation(
        "GET",
        "/health_check",
        health_check,
        "Readiness of each store",
        scope="public",
        tag="health",
        responses={200: Readiness, 503: Readiness},
    ),
]
