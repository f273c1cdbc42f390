"""``Client`` and ``AsyncClient``: one set of calls, two ways of sending them.

Each API call is described once (``_Call``: method, path, body, how to read
the answer); the sync and async clients only differ in how they send it and
how they wait between retries. Answers 429 and 503 are retried with
exponential backoff, honouring ``Retry-After``; so are connections that were
never established. Anything else that fails raises at once.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from flowserve.client._exceptions import (
    APIError,
    ClientError,
    FlowNotFound,
    JobError,
    JobFailed,
    JobNotFound,
    JobTimeout,
    TransportError,
)
from flowserve.client._models import (
    Event,
    EventParser,
    FlowInfo,
    Job,
    RunResult,
    Snippets,
    WorkflowRun,
    api_error,
    flow_from_body,
    flows_from_body,
)

T = TypeVar("T")
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)

InputType = Literal["chat", "text", "any"]
OutputType = Literal["chat", "text", "any", "debug"]
FlowDocument = Mapping[str, Any] | str | Path

DEFAULT_BASE_URL = "http://127.0.0.1:7860"
RETRY_STATUSES = frozenset({429, 503})
GLOBAL_VAR_HEADER = "X-LANGFLOW-GLOBAL-VAR-"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry answers 429/503 and refused connections."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    # A Retry-After longer than this is not waited for: the error is raised.
    max_retry_after: float = 60.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None:
                return after if after <= self.max_retry_after else None
        base = min(self.max_backoff, self.backoff * (2.0**attempt))
        return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not security


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # What a 404 without a code means on this path (Langflow sends no codes).
    not_found: type[APIError] | None = None


def _flow_answer(response: httpx.Response) -> FlowInfo:
    return flow_from_body(_json(response), response.headers.get("etag"))


def _flow_ref(flow: str) -> str:
    if not flow:
        raise ClientError("an id (or endpoint name) is required, not an empty string")
    return quote(str(flow), safe="")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ClientError(
            f"{response.request.method} {response.request.url.path}: the answer is not JSON"
        ) from exc


def _decode(response: httpx.Response, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=type_)
    except msgspec.DecodeError as exc:
        raise ClientError(f"{response.request.url.path}: unexpected answer: {exc}") from exc


def _run_body(
    input_value: str | None,
    tweaks: Mapping[str, Any] | None,
    session_id: str | None,
    output_type: OutputType,
    input_type: InputType,
    output_component: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"output_type": output_type, "input_type": input_type}
    if input_value is not None:
        body["input_value"] = input_value
    if tweaks:
        body["tweaks"] = dict(tweaks)
    if session_id:
        body["session_id"] = session_id
    if output_component:
        body["output_component"] = output_component
    return body


def _workflow_body(
    input_value: str,
    tweaks: Mapping[str, Any] | None,
    session_id: str | None,
    globals_: Mapping[str, str] | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"input_value": input_value, "mode": "background"}
    if tweaks:
        body["tweaks"] = dict(tweaks)
    if session_id:
        body["session_id"] = session_id
    if globals_:
        body["globals"] = dict(globals_)
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    return body


def _read_document(flow: FlowDocument) -> dict[str, Any]:
    if isinstance(flow, Mapping):
        return dict(flow)
    try:
        document = json.loads(Path(flow).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read flow file {flow}: {exc}") from exc
    if not isinstance(document, dict):
        raise ClientError(f"flow file {flow} does not hold a JSON object")
    return document


class _Calls:
    """Every API call the clients make, described once."""

    @staticmethod
    def run(
        flow: str,
        body: dict[str, Any],
        variables: Mapping[str, str] | None,
        *,
        stream: bool = False,
    ) -> _Call[RunResult]:
        # Langflow's per-request global variables travel as headers.
        headers = {f"{GLOBAL_VAR_HEADER}{name}": value for name, value in (variables or {}).items()}
        if stream:
            headers["accept"] = "text/event-stream"
        return _Call(
            "POST",
            f"/api/v1/run/{_flow_ref(flow)}",
            lambda r: RunResult.from_body(_json(r)),
            json=body,
            params={"stream": "true" if stream else "false"},
            headers=headers,
            not_found=FlowNotFound,
        )

    @staticmethod
    def webhook(flow: str, payload: Any) -> _Call[Job]:
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return _Call(
            "POST",
            f"/api/v1/webhook/{_flow_ref(flow)}",
            lambda r: Job.from_body(_json(r), location=r.headers.get("location")),
            content=content,
            headers={"content-type": "application/json"},
            not_found=FlowNotFound,
        )

    @staticmethod
    def submit_workflow(flow_id: str, body: dict[str, Any]) -> _Call[WorkflowRun]:
        return _Call(
            "POST",
            "/api/v2/workflows",
            lambda r: WorkflowRun.from_body(_json(r)),
            json={"flow_id": flow_id, **body},
            not_found=FlowNotFound,
        )

    @staticmethod
    def workflow(job_id: str) -> _Call[WorkflowRun]:
        return _Call(
            "GET",
            "/api/v2/workflows",
            lambda r: WorkflowRun.from_body(_json(r)),
            params={"job_id": job_id},
            not_found=JobNotFound,
        )

    @staticmethod
    def stop_workflow(job_id: str) -> _Call[str]:
        return _Call(
            "POST",
            "/api/v2/workflows/stop",
            lambda r: str(_json(r).get("message") or ""),
            json={"job_id": job_id},
            not_found=JobNotFound,
        )

    @staticmethod
    def job(job_id: str) -> _Call[Job]:
        return _Call(
            "GET",
            f"/api/v1/jobs/{_flow_ref(job_id)}",
            lambda r: Job.from_body(_json(r), location=str(r.request.url)),
            not_found=JobNotFound,
        )

    @staticmethod
    def list_flows() -> _Call[list[FlowInfo]]:
        return _Call(
            "GET", "/api/v1/flows/", lambda r: flows_from_body(_json(r)), params={"get_all": "true"}
        )

    @staticmethod
    def get_flow(flow_id: str) -> _Call[FlowInfo]:
        return _Call(
            "GET",
            f"/api/v1/flows/{_flow_ref(flow_id)}",
            _flow_answer,
            not_found=FlowNotFound,
        )

    @staticmethod
    def create_flow(document: dict[str, Any]) -> _Call[FlowInfo]:
        return _Call("POST", "/api/v1/flows/", _flow_answer, json=document)

    @staticmethod
    def update_flow(
        flow_id: str, changes: dict[str, Any], if_match: str | None = None
    ) -> _Call[FlowInfo]:
        return _Call(
            "PATCH",
            f"/api/v1/flows/{_flow_ref(flow_id)}",
            _flow_answer,
            json=changes,
            headers={"If-Match": if_match} if if_match is not None else {},
            not_found=FlowNotFound,
        )

    @staticmethod
    def delete_flow(flow_id: str) -> _Call[None]:
        return _Call(
            "DELETE", f"/api/v1/flows/{_flow_ref(flow_id)}", lambda r: None, not_found=FlowNotFound
        )

    @staticmethod
    def snippets(flow: str, input_value: str | None) -> _Call[Snippets]:
        return _Call(
            "GET",
            f"/api/v1/flows/{_flow_ref(flow)}/snippets",
            lambda r: _decode(r, Snippets),
            params={"input_value": input_value} if input_value is not None else None,
            not_found=FlowNotFound,
        )

    @staticmethod
    def export(flow: str, format: Literal["json", "python"]) -> _Call[bytes]:
        return _Call(
            "GET",
            f"/api/v1/flows/{_flow_ref(flow)}/export",
            lambda r: r.content,
            params={"format": format},
            not_found=FlowNotFound,
        )


class _BaseClient(Generic[HttpT]):
    def __init__(
        self,
        http: HttpT,
        *,
        retry: RetryPolicy,
        poll_interval: float,
    ) -> None:
        self._http: HttpT = http
        self.retry = retry
        self.poll_interval = poll_interval

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    @staticmethod
    def _http_options(
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | None,
    ) -> dict[str, Any]:
        merged = {"accept": "application/json", **(headers or {})}
        if api_key:
            merged["x-api-key"] = api_key
        return {
            "base_url": base_url.rstrip("/"),
            "headers": merged,
            "timeout": timeout,
        }

    def _request(self, call: _Call[Any]) -> httpx.Request:
        return self._http.build_request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            content=call.content,
            headers=dict(call.headers),
        )

    @staticmethod
    def _should_retry(response: httpx.Response) -> bool:
        return response.status_code in RETRY_STATUSES


def _check(response: httpx.Response, call: _Call[Any]) -> httpx.Response:
    if response.is_success:
        return response
    raise api_error(
        response.status_code, response.headers, response.content, not_found=call.not_found
    )


class Client(_BaseClient[httpx.Client]):
    """A synchronous client for flowserve and Langflow servers.

    >>> with Client("http://127.0.0.1:7860", api_key="...") as client:
    ...     print(client.run_flow("my-flow", "hello").output)
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 300.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        poll_interval: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        options = self._http_options(base_url, api_key, headers, timeout)
        super().__init__(
            httpx.Client(transport=transport, **options),
            retry=retry or RetryPolicy(),
            poll_interval=poll_interval,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        response = self._send_raw(call, stream=False)
        return call.parse(_check(response, call))

    def _send_raw(self, call: _Call[Any], *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.send(self._request(call), stream=stream)
            except httpx.ConnectError as exc:
                # Never connected: nothing was sent, so even a POST is safe to retry.
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise TransportError(f"cannot connect to {self.base_url}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise TransportError(f"{call.method} {call.path}: {exc}") from exc
            else:
                if not self._should_retry(response):
                    return response
                wait = self.retry.delay(attempt, response)
                if wait is None:
                    return response
                response.close()
            time.sleep(wait)
            attempt += 1

    # --- runs ---------------------------------------------------------------------

    def run_flow(
        self,
        flow_id: str,
        input_value: str | None = None,
        *,
        tweaks: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        output_type: OutputType = "chat",
        input_type: InputType = "chat",
        output_component: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> RunResult:
        """Run a flow (by id or endpoint name) and return its result.

        ``variables`` are global variables for this run only (Langflow's
        ``X-LANGFLOW-GLOBAL-VAR-<NAME>`` headers), e.g. a provider key.
        """
        body = _run_body(input_value, tweaks, session_id, output_type, input_type, output_component)
        return self._send(_Calls.run(flow_id, body, variables))

    def stream_flow(
        self,
        flow_id: str,
        input_value: str | None = None,
        *,
        tweaks: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        output_type: OutputType = "chat",
        input_type: InputType = "chat",
        output_component: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Iterator[Event]:
        """Run a flow and yield its events as they arrive, ending with ``EndEvent``
        (or ``ErrorEvent``). Errors found before the run starts raise."""
        body = _run_body(input_value, tweaks, session_id, output_type, input_type, output_component)
        call = _Calls.run(flow_id, body, variables, stream=True)
        response = self._send_raw(call, stream=True)
        try:
            if not response.is_success:
                response.read()
                _check(response, call)
            parser = EventParser()
            try:
                for chunk in response.iter_bytes():
                    yield from parser.feed(chunk)
            except httpx.HTTPError as exc:
                raise TransportError(f"the event stream broke off: {exc}") from exc
            yield from parser.close()
        finally:
            response.close()

    # --- v2 workflows -------------------------------------------------------------

    def submit_workflow(
        self,
        flow_id: str,
        input_value: str = "",
        *,
        tweaks: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        globals: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> WorkflowRun:
        """Queue a run in the background (``/api/v2/workflows``, mode ``background``)."""
        body = _workflow_body(input_value, tweaks, session_id, globals, idempotency_key)
        return self._send(_Calls.submit_workflow(flow_id, body))

    def workflow(self, job_id: str) -> WorkflowRun:
        """A background run's status, with its ``output`` once completed."""
        return self._send(_Calls.workflow(job_id))

    def stop_workflow(self, job_id: str) -> str:
        """Cancel a background run; the server's message says what became of it."""
        return self._send(_Calls.stop_workflow(job_id))

    def wait_workflow(self, job_id: str, *, timeout: float = 300.0) -> WorkflowRun:
        """Poll a background run until it is over (a failed one raises ``WorkflowFailed``)."""
        deadline = time.monotonic() + timeout
        interval = self.poll_interval
        while not (current := self.workflow(job_id)).done:
            if time.monotonic() >= deadline:
                raise ClientError(f"workflow job {job_id} not finished after {timeout:g} s")
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 2.0)
        return current

    # --- webhooks and jobs --------------------------------------------------------

    def trigger_webhook(self, flow: str, payload: Any = None) -> Job:
        """POST ``payload`` (JSON-encoded; bytes are sent as they are) to the flow's webhook."""
        return self._send(_Calls.webhook(flow, {} if payload is None else payload))

    def job(self, job_id: str) -> Job:
        return self._send(_Calls.job(job_id))

    def wait(self, job: Job | str, *, timeout: float = 300.0) -> Job:
        """Poll a job until it finishes; raise ``JobFailed`` if it failed."""
        current = job if isinstance(job, Job) else self.job(job)
        deadline = time.monotonic() + timeout
        interval = self.poll_interval
        while not current.done:
            job_id = _job_id(current)
            if time.monotonic() >= deadline:
                raise JobTimeout(f"job {job_id} not finished after {timeout:g} s", current)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 2.0)
            current = self.job(job_id)
        if current.status == "failed":
            raise JobFailed(current)
        return current

    # --- flows --------------------------------------------------------------------

    def list_flows(self) -> list[FlowInfo]:
        return self._send(_Calls.list_flows())

    def get_flow(self, flow_id: str) -> FlowInfo:
        return self._send(_Calls.get_flow(flow_id))

    def create_flow(self, flow: FlowDocument) -> FlowInfo:
        """Store a flow: a Langflow flow document, or the path of its JSON file."""
        return self._send(_Calls.create_flow(_read_document(flow)))

    def update_flow(self, flow_id: str, *, if_match: str | None = None, **changes: Any) -> FlowInfo:
        """Change some fields. With ``if_match`` (a ``FlowInfo.etag``), only if the flow is
        still at that version: else ``FlowChanged`` (412) and nothing is written."""
        return self._send(_Calls.update_flow(flow_id, changes, if_match))

    def delete_flow(self, flow_id: str) -> None:
        self._send(_Calls.delete_flow(flow_id))

    def snippets(self, flow: str, *, input_value: str | None = None) -> Snippets:
        """Code (curl, Python, JavaScript) that runs the flow, built by the server."""
        return self._send(_Calls.snippets(flow, input_value))

    def export_flow(self, flow: str, format: Literal["json", "python"] = "json") -> bytes:
        return self._send(_Calls.export(flow, format))


class AsyncClient(_BaseClient[httpx.AsyncClient]):
    """The asynchronous twin of ``Client``: same calls, awaited.

    >>> async with AsyncClient("http://127.0.0.1:7860") as client:
    ...     async for event in client.stream_flow("my-flow", "hello"):
    ...         ...
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = 300.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        poll_interval: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = self._http_options(base_url, api_key, headers, timeout)
        super().__init__(
            httpx.AsyncClient(transport=transport, **options),
            retry=retry or RetryPolicy(),
            poll_interval=poll_interval,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        response = await self._send_raw(call, stream=False)
        return call.parse(_check(response, call))

    async def _send_raw(self, call: _Call[Any], *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.send(self._request(call), stream=stream)
            except httpx.ConnectError as exc:
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise TransportError(f"cannot connect to {self.base_url}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise TransportError(f"{call.method} {call.path}: {exc}") from exc
            else:
                if not self._should_retry(response):
                    return response
                wait = self.retry.delay(attempt, response)
                if wait is None:
                    return response
                await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1

    async def run_flow(
        self,
        flow_id: str,
        input_value: str | None = None,
        *,
        tweaks: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        output_type: OutputType = "chat",
        input_type: InputType = "chat",
        output_component: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> RunResult:
        body = _run_body(input_value, tweaks, session_id, output_type, input_type, output_component)
        return await self._send(_Calls.run(flow_id, body, variables))

    async def stream_flow(
        self,
        flow_id: str,
        input_value: str | None = None,
        *,
        tweaks: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        output_type: OutputType = "chat",
        input_type: InputType = "chat",
        output_component: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Event]:
        body = _run_body(input_value, tweaks, session_id, output_type, input_type, output_component)
        call = _Calls.run(flow_id, body, variables, stream=True)
        response = await self._send_raw(call, stream=True)
        try:
            if not response.is_success:
                await response.aread()
                _check(response, call)
            parser = EventParser()
            try:
                async for chunk in response.aiter_bytes():
                    for event in parser.feed(chunk):
                        yield event
            except httpx.HTTPError as exc:
                raise TransportError(f"the event stream broke off: {exc}") from exc
            for event in parser.close():
                yield event
        finally:
            await response.aclose()

    async def submit_workflow(
        self,
        flow_id: str,
        input_value: str = "",
        *,
        tweaks: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        globals: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> WorkflowRun:
        body = _workflow_body(input_value, tweaks, session_id, globals, idempotency_key)
        return await self._send(_Calls.submit_workflow(flow_id, body))

    async def workflow(self, job_id: str) -> WorkflowRun:
        return await self._send(_Calls.workflow(job_id))

    async def stop_workflow(self, job_id: str) -> str:
        return await self._send(_Calls.stop_workflow(job_id))

    async def wait_workflow(self, job_id: str, *, timeout: float = 300.0) -> WorkflowRun:  # noqa: ASYNC109 - a polling deadline, as in Client.wait_workflow
        deadline = time.monotonic() + timeout
        interval = self.poll_interval
        while not (current := await self.workflow(job_id)).done:
            if time.monotonic() >= deadline:
                raise ClientError(f"workflow job {job_id} not finished after {timeout:g} s")
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 2.0)
        return current

    async def trigger_webhook(self, flow: str, payload: Any = None) -> Job:
        return await self._send(_Calls.webhook(flow, {} if payload is None else payload))

    async def job(self, job_id: str) -> Job:
        return await self._send(_Calls.job(job_id))

    async def wait(self, job: Job | str, *, timeout: float = 300.0) -> Job:  # noqa: ASYNC109 - a polling deadline, as in Client.wait
        current = job if isinstance(job, Job) else await self.job(job)
        deadline = time.monotonic() + timeout
        interval = self.poll_interval
        while not current.done:
            job_id = _job_id(current)
            if time.monotonic() >= deadline:
                raise JobTimeout(f"job {job_id} not finished after {timeout:g} s", current)
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 2.0)
            current = await self.job(job_id)
        if current.status == "failed":
            raise JobFailed(current)
        return current

    async def list_flows(self) -> list[FlowInfo]:
        return await self._send(_Calls.list_flows())

    async def get_flow(self, flow_id: str) -> FlowInfo:
        return await self._send(_Calls.get_flow(flow_id))

    async def create_flow(self, flow: FlowDocument) -> FlowInfo:
        return await self._send(_Calls.create_flow(_read_document(flow)))

    async def update_flow(
        self, flow_id: str, *, if_match: str | None = None, **changes: Any
    ) -> FlowInfo:
        return await self._send(_Calls.update_flow(flow_id, changes, if_match))

    async def delete_flow(self, flow_id: str) -> None:
        await self._send(_Calls.delete_flow(flow_id))

    async def snippets(self, flow: str, *, input_value: str | None = None) -> Snippets:
        return await self._send(_Calls.snippets(flow, input_value))

    async def export_flow(self, flow: str, format: Literal["json", "python"] = "json") -> bytes:
        return await self._send(_Calls.export(flow, format))


def _job_id(job: Job) -> str:
    if not job.id:
        raise JobError(
            "the server gave no job id to poll (Langflow runs webhooks without one)", job
        )
    return job.id
