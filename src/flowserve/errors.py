"""The exception tree of flowserve. No framework imports here.

Every error carries the HTTP status it maps to and a stable machine-readable
``code``; the API turns any ``FlowserveError`` into
``{"detail": "...", "code": "...", "request_id": "..."}``.

    FlowserveError                      500 internal_error
    ├── BadRequest                      400 bad_request
    │   └── MalformedJSON               400 malformed_json
    ├── Unauthorized                    401 unauthorized
    │   ├── MissingApiKey               401 missing_api_key
    │   └── InvalidApiKey               401 invalid_api_key (unknown, expired, revoked)
    ├── Forbidden                       403 forbidden
    │   ├── InsufficientScope           403 insufficient_scope
    │   └── FlowNotAllowed              403 flow_not_allowed
    ├── NotFound                        404 not_found
    │   ├── FlowNotFound                404 flow_not_found
    │   ├── SessionNotFound             404 session_not_found
    │   ├── JobNotFound                 404 job_not_found
    │   ├── ApiKeyNotFound              404 api_key_not_found
    │   ├── FileNotFound                404 file_not_found (or not the caller's to read)
    │   └── KnowledgeBaseNotFound       404 knowledge_base_not_found
    ├── Conflict                        409 conflict
    │   └── EndpointNameTaken           409 endpoint_name_taken
    ├── PreconditionFailed              412 precondition_failed
    │   └── FlowChanged                 412 flow_changed (If-Match names an older version)
    ├── PayloadTooLarge                 413 payload_too_large
    ├── UnsupportedEncoding             415 unsupported_encoding (a compressed body)
    ├── Invalid                         422 invalid
    │   ├── InvalidFlow                 422 invalid_flow
    │   │   └── UnsupportedComponent    422 unsupported_component
    │   ├── InvalidTweaks               422 invalid_tweaks
    │   ├── InvalidRunInput             422 invalid_input
    │   ├── DimensionMismatch           422 dimension_mismatch (a vector unlike its collection's)
    │   ├── LoopLimitExceeded           422 loop_limit_exceeded
    │   └── QueryFailed                 422 query_failed (the SQL component's query)
    ├── RateLimited                     429 rate_limited
    ├── RunFailed                       500 run_failed   (a component raised)
    ├── WorkflowFailed                  500 workflow_failed (a v2 background run failed)
    ├── FeatureDisabled                 501 feature_disabled (turned off by a setting)
    ├── UpstreamError                   502 upstream_error (an LLM provider, a URL)
    ├── Unavailable                     503 unavailable  (a store is down)
    │   ├── Overloaded                  503 overloaded   (max concurrent runs; Retry-After)
    │   └── PoolExhausted               503 pool_exhausted (no free connection in time; Retry-After)
    └── RunTimeout                      504 run_timeout
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class FlowserveError(Exception):
    """Root of every error flowserve raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(FlowserveError):
    status = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class Unauthorized(FlowserveError):
    status = 401
    code = "unauthorized"


class MissingApiKey(Unauthorized):
    code = "missing_api_key"


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"


class Forbidden(FlowserveError):
    status = 403
    code = "forbidden"


class InsufficientScope(Forbidden):
    code = "insufficient_scope"


class FlowNotAllowed(Forbidden):
    code = "flow_not_allowed"


class NotFound(FlowserveError):
    status = 404
    code = "not_found"


class FlowNotFound(NotFound):
    code = "flow_not_found"

    def __init__(self, identifier: str) -> None:
        # Langflow's exact wording; clients match on it.
        super().__init__(f"Flow identifier {identifier} not found")
        self.identifier = identifier


class SessionNotFound(NotFound):
    code = "session_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class FileNotFound(NotFound):
    code = "file_not_found"


class KnowledgeBaseNotFound(NotFound):
    code = "knowledge_base_not_found"


class Conflict(FlowserveError):
    status = 409
    code = "conflict"


class EndpointNameTaken(Conflict):
    code = "endpoint_name_taken"


class PreconditionFailed(FlowserveError):
    status = 412
    code = "precondition_failed"


class FlowChanged(PreconditionFailed):
    code = "flow_changed"


class PayloadTooLarge(FlowserveError):
    status = 413
    code = "payload_too_large"


class UnsupportedEncoding(FlowserveError):
    status = 415
    code = "unsupported_encoding"


class Invalid(FlowserveError):
    status = 422
    code = "invalid"


class InvalidFlow(Invalid):
    """A flow file that cannot be compiled. ``problems`` lists every issue found."""

    code = "invalid_flow"

    def __init__(self, problems: Sequence[str] | str) -> None:
        items = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("Invalid flow: " + "; ".join(items))
        self.problems = items


class UnsupportedComponent(InvalidFlow):
    code = "unsupported_component"


class InvalidTweaks(Invalid):
    code = "invalid_tweaks"


class InvalidRunInput(Invalid):
    code = "invalid_input"


class DimensionMismatch(Invalid):
    code = "dimension_mismatch"


class LoopLimitExceeded(Invalid):
    """A loop was given more items than FLOWSERVE_MAX_LOOP_ITERATIONS allows."""

    code = "loop_limit_exceeded"


class QueryFailed(Invalid):
    """The SQL Database component's query was refused or failed in the database."""

    code = "query_failed"


class RateLimited(FlowserveError):
    status = 429
    code = "rate_limited"


class RunFailed(FlowserveError):
    """A component raised while running; the detail names the component."""

    status = 500
    code = "run_failed"


class WorkflowFailed(FlowserveError):
    """Asked for the result of a v2 background run that failed (Langflow answers 500)."""

    status = 500
    code = "workflow_failed"


class FeatureDisabled(FlowserveError):
    """The route exists but its feature is turned off by a setting (Langflow answers 501)."""

    status = 501
    code = "feature_disabled"


class UpstreamError(FlowserveError):
    status = 502
    code = "upstream_error"


class Unavailable(FlowserveError):
    status = 503
    code = "unavailable"


class Overloaded(Unavailable):
    """This instance runs as many flows as it may; the client should retry (elsewhere)."""

    code = "overloaded"


class PoolExhausted(Unavailable):
    """A bounded pool on the run path (provider connections, outbound HTTP, Redis,
    PostgreSQL) had no free connection within its wait; the detail names the pool
    and the setting that sizes it. The client should retry (elsewhere)."""

    code = "pool_exhausted"

    def __init__(self, pool: str, setting: str, size: int, *, retry_after: int = 1) -> None:
        env = f"FLOWSERVE_{setting.upper()}"
        super().__init__(
            f"{pool} pool is full ({setting.upper()}={size}); retry later or raise {env}",
            headers={"Retry-After": str(retry_after)},
        )
        self.pool = pool
        self.setting = setting


class RunTimeout(FlowserveError):
    status = 504
    code = "run_timeout"
