"""The exceptions the client raises, mirroring the server's tree in ``flowserve.errors``.

An error answer from the server becomes the ``APIError`` subclass named by its
``code`` (flowserve answers ``{"detail", "code", "request_id"}``), or by its
status when the code is unknown or absent (Langflow answers ``{"detail"}``
only). Every ``APIError`` carries ``status``, ``code``, ``detail`` (always a
string) and ``request_id``.

    ClientError
    ├── TransportError                  the server could not be reached / timed out
    ├── StreamError                     the event stream broke off or was not JSON
    ├── JobError                        waiting on a webhook job
    │   ├── JobFailed                   the job finished with status "failed"
    │   └── JobTimeout                  it did not finish in time
    └── APIError                        any error answer (4xx/5xx)
        ├── BadRequest                  400 bad_request
        │   └── MalformedJSON           400 malformed_json
        ├── Unauthorized                401 unauthorized
        ├── Forbidden                   403 forbidden
        ├── NotFound                    404 not_found
        │   ├── FlowNotFound            404 flow_not_found
        │   ├── SessionNotFound         404 session_not_found
        │   ├── JobNotFound             404 job_not_found
        │   ├── KnowledgeBaseNotFound   404 knowledge_base_not_found
        │   └── FileNotFound            404 file_not_found
        ├── Conflict                    409 conflict
        │   └── EndpointNameTaken       409 endpoint_name_taken
        ├── PreconditionFailed          412 precondition_failed
        │   └── FlowChanged             412 flow_changed (update_flow's if_match is stale)
        ├── PayloadTooLarge             413 payload_too_large
        ├── UnsupportedEncoding         415 unsupported_encoding
        ├── Invalid                     422 invalid
        │   ├── InvalidFlow             422 invalid_flow
        │   │   └── UnsupportedComponent 422 unsupported_component
        │   ├── InvalidTweaks           422 invalid_tweaks
        │   ├── InvalidRunInput         422 invalid_input
        │   ├── DimensionMismatch       422 dimension_mismatch
        │   ├── LoopLimitExceeded       422 loop_limit_exceeded
        │   └── QueryFailed             422 query_failed
        ├── RateLimited                 429 rate_limited
        ├── ServerError                 500 internal_error
        │   ├── RunFailed               500 run_failed
        │   └── WorkflowFailed          500 workflow_failed
        ├── FeatureDisabled             501 feature_disabled
        ├── UpstreamError               502 upstream_error
        ├── Unavailable                 503 unavailable
        │   ├── Overloaded              503 overloaded
        │   └── PoolExhausted           503 pool_exhausted (a server pool was full; retried)
        └── RunTimeout                  504 run_timeout
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from flowserve.client._models import Job


class ClientError(Exception):
    """Root of everything the flowserve client raises."""


class TransportError(ClientError):
    """The request did not get an answer: connection refused, reset, or timed out."""


class StreamError(ClientError):
    """The event stream could not be read: cut short or not made of JSON events."""


class JobError(ClientError):
    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(JobError):
    """The webhook job finished with status ``failed``; ``detail`` says why."""

    def __init__(self, job: Job) -> None:
        self.detail = job.error_detail or "the job failed"
        super().__init__(f"Job {job.id} failed: {self.detail}", job)


class JobTimeout(JobError):
    """The job was still queued or running when ``wait`` gave up."""


class APIError(ClientError):
    """The server answered with an error status."""

    status: ClassVar[int] = 0
    code: ClassVar[str] = "error"

    def __init__(
        self,
        detail: str,
        *,
        status: int,
        code: str | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {code or self.code}: {detail}")
        self.detail = detail
        # The instance's status and code are what the server said, even when
        # only the category matched (an unknown code falls back to its status).
        self.status = status  # type: ignore[misc]
        self.code = code or type(self).code  # type: ignore[misc]
        self.request_id = request_id
        self.headers = headers or {}
        self.body = body


class BadRequest(APIError):
    status = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class Unauthorized(APIError):
    status = 401
    code = "unauthorized"


class MissingApiKey(Unauthorized):
    code = "missing_api_key"


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"


class Forbidden(APIError):
    status = 403
    code = "forbidden"


class InsufficientScope(Forbidden):
    code = "insufficient_scope"


class FlowNotAllowed(Forbidden):
    code = "flow_not_allowed"


class NotFound(APIError):
    status = 404
    code = "not_found"


class FlowNotFound(NotFound):
    code = "flow_not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class KnowledgeBaseNotFound(NotFound):
    code = "knowledge_base_not_found"


class FileNotFound(NotFound):
    code = "file_not_found"


class Conflict(APIError):
    status = 409
    code = "conflict"


class EndpointNameTaken(Conflict):
    code = "endpoint_name_taken"


class PreconditionFailed(APIError):
    status = 412
    code = "precondition_failed"


class FlowChanged(PreconditionFailed):
    code = "flow_changed"


class PayloadTooLarge(APIError):
    status = 413
    code = "payload_too_large"


class UnsupportedEncoding(APIError):
    status = 415
    code = "unsupported_encoding"


class Invalid(APIError):
    status = 422
    code = "invalid"


class InvalidFlow(Invalid):
    code = "invalid_flow"


class UnsupportedComponent(InvalidFlow):
    code = "unsupported_component"


class InvalidTweaks(Invalid):
    code = "invalid_tweaks"


class InvalidRunInput(Invalid):
    code = "invalid_input"


class DimensionMismatch(Invalid):
    code = "dimension_mismatch"


class LoopLimitExceeded(Invalid):
    code = "loop_limit_exceeded"


class QueryFailed(Invalid):
    code = "query_failed"


class RateLimited(APIError):
    status = 429
    code = "rate_limited"


class ServerError(APIError):
    status = 500
    code = "internal_error"


class RunFailed(ServerError):
    code = "run_failed"


class WorkflowFailed(ServerError):
    """The v2 background run asked about failed; ``detail`` says why."""

    code = "workflow_failed"


class FeatureDisabled(APIError):
    """The server has this feature turned off (e.g. log retrieval)."""

    status = 501
    code = "feature_disabled"


class UpstreamError(APIError):
    status = 502
    code = "upstream_error"


class Unavailable(APIError):
    status = 503
    code = "unavailable"


class Overloaded(Unavailable):
    code = "overloaded"


class PoolExhausted(Unavailable):
    """A pool of the server's (provider connections, Redis, ...) was full; ``detail``
    names the setting that sizes it."""

    code = "pool_exhausted"


class RunTimeout(APIError):
    status = 504
    code = "run_timeout"


def _leaves(root: type[APIError]) -> list[type[APIError]]:
    found: list[type[APIError]] = []
    for sub in root.__subclasses__():
        found.append(sub)
        found.extend(_leaves(sub))
    return found


_BY_CODE: dict[str, type[APIError]] = {cls.code: cls for cls in _leaves(APIError)}
# The category of each status: the class right under APIError that has it.
_BY_STATUS: dict[int, type[APIError]] = {cls.status: cls for cls in APIError.__subclasses__()}


def error_class(status: int, code: str | None) -> type[APIError]:
    """The most specific class for an error answer: by code, else by status."""
    if code:
        by_code = _BY_CODE.get(code)
        if by_code is not None and by_code.status == status:
            return by_code
    by_status = _BY_STATUS.get(status)
    if by_status is not None:
        return by_status
    return ServerError if status >= 500 else APIError
