"""One typed settings object, read once from ``FLOWSERVE_*`` environment variables.

``Settings.from_env()`` strips the prefix, lowercases the names and converts the
strings with msgspec (so ``FLOWSERVE_PORT=8000`` becomes an int); a variable
with the prefix that names no setting is an error, so typos do not pass
silently. Settings are passed down explicitly and never logged whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from flowserve.errors import Invalid

PREFIX = "FLOWSERVE_"

# Langflow's names that mean the same thing as one of ours.
ALIASES = {"LANGFLOW_API_KEY": "api_key"}


class SettingsError(Invalid):
    code = "invalid_settings"


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
# "" or "/prefix[/more]" with no trailing slash: what the proxy strips before forwarding.
RootPath = Annotated[str, msgspec.Meta(pattern=r"^(/[^/\s]+)*$")]
# "" or an absolute http(s) URL: what users reach, used for generated links.
PublicURL = Annotated[str, msgspec.Meta(pattern=r"^(https?://[^/\s]+(/\S*)?)?$")]


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Serving
    host: str = "127.0.0.1"
    port: Port = 7860
    workers: Positive = 1
    flows_dir: str = "flows"
    root_path: RootPath = ""
    public_url: PublicURL = ""
    forwarded_allow_ips: str = "127.0.0.1"
    cors_origins: str = ""

    # State: unset means the embedded default (SQLite file + in-process stores).
    database_url: str = ""
    redis_url: str = ""
    redis_prefix: str = "flowserve:"
    sqlite_path: str = "flowserve.db"
    migrate_on_start: bool = True
    session_ttl: Positive = 1800
    # Seconds between checks that cached compiled flows are still current (a missed
    # change announcement is caught within this time).
    flow_cache_check: Seconds = 2.0

    # Access control
    api_key: str = ""
    auth: Literal["on", "off"] = "on"
    # How long a verified key is trusted without asking the store again: the most
    # a revocation can take to reach another instance when Redis pub/sub is down.
    key_cache_ttl: Seconds = 5.0
    # Langflow's webhook_auth_enable: webhooks need an execute key unless a flow opts out.
    webhook_auth: bool = True
    # Flows (ids or endpoint names, comma-separated) whose webhooks need no key: the
    # per-flow opt-out, kept in the operator's hands rather than in editable flows.
    open_webhooks: str = ""
    # Requests per window; 0 disables. Per key for every authenticated call, per
    # client IP for anonymous runs of PUBLIC flows.
    rate_limit_window: Seconds = 60.0
    rate_limit_per_key: NonNegative = 0
    rate_limit_per_ip: NonNegative = 60
    # Key lookups in the store (keys not yet cached, unknown ones) per client address:
    # a guard for the database against floods of made-up keys.
    rate_limit_key_lookups: NonNegative = 600

    # MCP: stateless Streamable HTTP works behind any load balancer; stateful
    # sessions (false) also get tools/list_changed pushed, polled every interval.
    mcp_stateless: bool = True
    mcp_watch_interval: Seconds = 2.0

    # Limits
    max_body_bytes: Positive = 32 * 1024 * 1024
    run_timeout: Seconds = 300.0
    # Runs in flight at once; `flowserve serve` raises the open files limit to match.
    max_concurrent_runs: Positive = 4096
    # Seconds a client is told to wait (Retry-After) when the instance is at max_concurrent_runs.
    overload_retry_after: Positive = 1
    # Connections the kernel queues for `flowserve serve` before they are accepted (uvicorn's
    # backlog; the kernel caps it at net.core.somaxconn).
    backlog: Positive = 4096

    # Pools on a run's path (deploy/README.md, "Pools and limits"). Each is bounded; a caller
    # waits at most its timeout for a free connection, then gets a 503 pool_exhausted with
    # Retry-After, as beyond max_concurrent_runs. A size of 0 means max_concurrent_runs.
    # Model calls in flight at once (a streamed answer holds its connection until it ends).
    provider_pool_size: NonNegative = 0
    provider_pool_timeout: Seconds = 10.0
    # Connections of the components' outbound HTTP client (URL, API Request, search...).
    http_pool_size: NonNegative = 0
    http_pool_timeout: Seconds = 10.0
    # Redis commands in flight (sessions, rate limits, jobs); the job queue has a pool as big.
    redis_pool_size: Positive = 256
    redis_pool_timeout: Seconds = 5.0
    # PostgreSQL connections (flows, keys, files, vectors): the server's max_connections
    # must cover this times the instances and workers.
    database_pool_size: Positive = 20
    database_pool_timeout: Seconds = 10.0

    # Lifecycle
    # In-flight requests and streams get this long to finish after SIGTERM.
    shutdown_timeout: Seconds = 30.0
    # How long startup keeps retrying unreachable stores (with backoff) before giving up.
    startup_timeout: Seconds = 60.0
    # An idle event stream sends a blank line this often so proxies keep it open; 0 = never.
    stream_heartbeat: NonNegativeFloat = 15.0

    # Observability
    metrics: bool = True
    # /metrics needs an admin key, or this token as `Authorization: Bearer` (for Prometheus,
    # which should not hold an admin key), unless metrics_public says the network guards it.
    metrics_token: str = ""
    metrics_public: bool = False

    # Outbound HTTP from components (URL, APIRequest, web search, providers).
    # Private, loopback and link-local targets are refused unless listed here
    # (comma-separated addresses or CIDR ranges, e.g. "127.0.0.1,10.0.0.0/8").
    outbound_allowlist: str = ""
    web_search_url: str = ""
    news_search_url: str = ""

    # Knowledge bases (vector search): the embedding model a new knowledge base gets when
    # its flow names none, as "provider/model" or a bare OpenAI model name. Its endpoint
    # and key are the provider's variables (OPENAI_BASE_URL, OPENAI_API_KEY...).
    embedding_model: str = "OpenAI/text-embedding-3-small"

    # Jobs (webhook runs, event deliveries): on Redis when redis_url is set, else in-process.
    job_worker: bool = True  # run a worker inside each `serve` instance
    job_concurrency: Positive = 16  # jobs one worker runs at once
    job_visibility_timeout: Seconds = 60.0  # a silent worker's jobs are reclaimed after this
    job_max_attempts: Positive = 5
    job_retry_base: Seconds = 1.0  # backoff: base * 2**(attempt-1), capped, with jitter
    job_retry_max: Seconds = 300.0
    job_result_ttl: Positive = 86400  # finished jobs (and idempotency keys) expire after this

    # Loops and the data-source components (issue 15; docs/components.md).
    # Items one execution of a Loop component may iterate over; more fails the run (422).
    max_loop_iterations: Positive = 1000
    # The one database the SQL Database component queries: never one a flow or request
    # names. Read-only unless sql_allow_writes; each query is bounded in time and rows.
    sql_database_url: str = ""
    sql_allow_writes: bool = False
    sql_timeout: Seconds = 10.0
    sql_max_rows: Positive = 1000
    # Where the arXiv and AssemblyAI components call (the public APIs by default).
    arxiv_url: str = "https://export.arxiv.org/api/query"
    assemblyai_url: str = "https://api.assemblyai.com"
    assemblyai_poll_interval: Seconds = 3.0
    assemblyai_timeout: Seconds = 600.0

    # Outgoing event webhooks
    webhook_allowlist: str = ""  # hosts, IPs or CIDRs exempt from the private-address guard
    webhook_timeout: Seconds = 10.0
    webhook_max_attempts: Positive = 8

    # Files (/api/v2/files, /api/v1/files, the File and SaveToFile components).
    # "database": in PostgreSQL (needs database_url); "directory": under files_dir (a
    # local directory or a mounted volume); "auto": database with database_url, else directory.
    files_backend: Literal["auto", "database", "directory"] = "auto"
    files_dir: str = ""  # "" = a "files" directory beside the SQLite file
    max_file_bytes: Positive = 100 * 1024 * 1024

    # Logs
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = True
    # One JSON line per request (method, path, status, duration, request id). Off saves
    # about a tenth of the CPU of a trivial run; errors are logged either way.
    access_log: bool = True
    # Log retrieval (GET /logs, /logs-stream, admin keys): this many of this process's
    # last log lines kept in memory; 0, the default, turns the routes off (501, as Langflow).
    log_buffer_size: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0

    @property
    def provider_pool_limit(self) -> int:
        """Model calls in flight: ``provider_pool_size``, 0 meaning ``max_concurrent_runs``."""
        return self.provider_pool_size or self.max_concurrent_runs

    @property
    def http_pool_limit(self) -> int:
        """Outbound connections: ``http_pool_size``, 0 meaning ``max_concurrent_runs``."""
        return self.http_pool_size or self.max_concurrent_runs

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def files_path(self) -> Path:
        return Path(self.files_dir) if self.files_dir else Path(self.sqlite_path).parent / "files"

    @property
    def flows_path(self) -> Path:
        return Path(self.flows_dir)

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for name, value in env.items():
            if name in ALIASES:
                values.setdefault(ALIASES[name], value)
        for name, value in env.items():
            if name.startswith(PREFIX):
                values[name[len(PREFIX) :].lower()] = value
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"Invalid setting: {_env_name(str(exc))}") from exc

    @classmethod
    def from_env(cls, env_file: str | None = None) -> Settings:
        env: dict[str, str] = {}
        if env_file:
            env.update(read_env_file(Path(env_file)))
        env.update(os.environ)
        return cls.from_mapping(env)

    def replace(self, **changes: Any) -> Settings:
        return msgspec.structs.replace(self, **changes)


def _env_name(message: str) -> str:
    # "Expected `int` >= 0 - at `$.port`" -> name the variable people set.
    if "`$." in message:
        return re.sub(r"`\$\.(\w+)`", lambda m: f"`{PREFIX}{m.group(1).upper()}`", message)
    # "Object contains unknown field `prot`" -> mention the variable people set.
    if "`" in message:
        head, field, tail = message.split("`", 2)
        return f"{head}`{PREFIX}{field.upper()}`{tail}"
    return message.replace("$.", PREFIX)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv-style file: KEY=VALUE lines, # comments, optional quotes."""
    env: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"Cannot read env file {path}: {exc.strerror}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def otlp_endpoint() -> str:
    """The OpenTelemetry exporter endpoint (standard ``OTEL_*`` variables); empty = no tracing."""
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )


def prometheus_multiproc_dir() -> str:
    """Where worker processes share their metrics (set by ``flowserve serve --workers N``)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def process_environment() -> dict[str, str]:
    """A snapshot of the environment: the global variables flows may reference."""
    return dict(os.environ)
