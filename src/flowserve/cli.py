"""The ``flowserve`` command: serve the API, run job workers, or run one flow file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from flowserve import __version__
from flowserve.engine import Registry
from flowserve.errors import FlowserveError
from flowserve.logs import configure_logging
from flowserve.settings import Settings

if TYPE_CHECKING:
    from flowserve.snippets import Snippets


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    settings = Settings.from_env(getattr(args, "env_file", None))
    changes = {k: v for k, v in overrides.items() if v is not None}
    return settings.replace(**changes) if changes else settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(
        args, host=args.host, port=args.port, workers=args.workers, flows_dir=args.flows_dir
    )
    configure_logging(settings.log_level, json=settings.log_json)
    if settings.auth == "on" and not settings.api_key:
        from flowserve.cli_keys import require_a_key

        require_a_key(settings)  # a clear error now rather than a failed startup later
    _prepare_for_runs(settings)
    config = {
        "backlog": settings.backlog,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "root_path": settings.root_path,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "proxy_headers": True,
        "access_log": False,
        "log_level": settings.log_level,
        "server_header": False,
        # SIGTERM: stop accepting, let in-flight runs and streams finish up to this deadline.
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        # Longer than the proxies' upstream keepalive (nginx: 60 s), so the proxy, not
        # us, closes idle pooled connections and never reuses one we just closed.
        "timeout_keep_alive": 75,
    }
    if settings.workers > 1 and not settings.redis_url:
        import structlog

        structlog.get_logger(__name__).warning(
            "workers_without_redis",
            detail=(
                f"FLOWSERVE_WORKERS={settings.workers} without FLOWSERVE_REDIS_URL: each "
                "worker process keeps its own session memory and job queue, so a "
                "conversation's next turn or a job poll answered by another worker does "
                "not see them. Set FLOWSERVE_REDIS_URL, or run one worker per instance."
            ),
        )
    if settings.workers > 1:
        # Worker processes rebuild the app from the environment: pass our overrides on.
        _export_overrides(settings)
        with _shared_metrics_dir():
            uvicorn.run("flowserve.app:app_from_env", factory=True, **config)  # type: ignore[arg-type]
    else:
        from flowserve.app import create_app

        uvicorn.run(create_app(settings, serving=True), **config)  # type: ignore[arg-type]
    return 0


def _prepare_for_runs(settings: Settings) -> None:
    """Room for max_concurrent_runs: the open files limit raised, shortfalls logged."""
    import structlog

    from flowserve.limits import raise_open_files_limit, serving_warnings

    log = structlog.get_logger(__name__)
    for event, fields in serving_warnings(settings, raise_open_files_limit()):
        log.warning(event, **fields)


@contextmanager
def _shared_metrics_dir() -> Iterator[None]:
    """Let the workers add up their metrics in files, so any worker's /metrics is whole."""
    import os
    import shutil
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # noqa: TID251 - the operator chose one
        yield
        return
    directory = tempfile.mkdtemp(prefix="flowserve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # noqa: TID251 - inherited by workers
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _export_overrides(settings: Settings) -> None:
    import os

    for name in ("host", "port", "flows_dir"):
        os.environ[f"FLOWSERVE_{name.upper()}"] = str(getattr(settings, name))  # noqa: TID251


def cmd_run(args: argparse.Namespace) -> int:
    from flowserve.bootstrap import file_record, open_services
    from flowserve.flowfile import load_document
    from flowserve.results import main_text
    from flowserve.runner import RunRequest

    # A throwaway store: running a file must not write it into a configured database.
    settings = _settings(args, flows_dir="", sqlite_path=":memory:", database_url="", redis_url="")
    configure_logging("warning", json=settings.log_json)
    try:
        tweaks = msgspec.json.decode(args.tweaks) if args.tweaks else None
    except msgspec.DecodeError as exc:
        raise FlowserveError(f"--tweaks is not valid JSON: {exc}") from exc
    if tweaks is not None and not isinstance(tweaks, dict):
        raise FlowserveError("--tweaks must be a JSON object")

    content = Path(args.flow).read_bytes()

    async def go() -> bytes | str:
        async with open_services(settings) as services:
            record = file_record(load_document(content))
            await services.flows.upsert(record)
            request = RunRequest(
                input_value=args.input,
                input_type=args.input_type,
                output_type=args.output_type,
                tweaks=tweaks,
                session_id=args.session_id,
            )
            prepared = await services.runner.prepare(record.id, request)
            response = await services.runner.execute(prepared)
            if args.json:
                return msgspec.json.format(msgspec.json.encode(response), indent=2)
            return main_text(response)

    out = asyncio.run(go())
    if isinstance(out, bytes):
        sys.stdout.buffer.write(out + b"\n")
    else:
        print(out)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args, flows_dir=args.flows_dir, job_concurrency=args.concurrency)
    configure_logging(settings.log_level, json=settings.log_json)
    if not settings.redis_url:
        raise FlowserveError(
            "flowserve worker needs FLOWSERVE_REDIS_URL: the in-process queue is only "
            "reachable from inside `flowserve serve`"
        )
    asyncio.run(run_worker(settings))
    return 0


async def run_worker(settings: Settings, registry: Registry | None = None) -> None:
    """Run jobs from the shared queue until SIGINT/SIGTERM (the ``worker`` command)."""
    from flowserve.bootstrap import open_services
    from flowserve.jobs import serve_worker

    async with open_services(settings, registry=registry) as services:
        await serve_worker(services.jobs.worker(settings, services.runner, services.http))


def cmd_mcp_config(args: argparse.Namespace) -> int:
    from flowserve.mcp_clients import KEY_PLACEHOLDER, client_config

    settings = _settings(args)
    document = client_config(
        settings,
        mode=args.mode,
        transport=args.transport,
        key=args.key,
        project_id=args.project,
        name=args.name,
    )
    sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n")
    if settings.auth != "off" and not args.key:
        print(f"note: replace {KEY_PLACEHOLDER} with an API key (or pass --key)", file=sys.stderr)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from flowserve.bootstrap import migrate

    settings = _settings(args)
    configure_logging("warning", json=settings.log_json)
    applied = asyncio.run(migrate(settings))
    target = "PostgreSQL" if settings.database_url else f"SQLite {settings.sqlite_path}"
    if not applied:
        print(f"{target}: schema up to date")
    for name in applied:
        print(f"{target}: applied {name}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Upsert the flow files of a directory into the configured store (idempotent)."""
    from flowserve.bootstrap import import_flows, open_services

    settings = _settings(args, flows_dir="")
    configure_logging("warning", json=settings.log_json)
    directory = Path(args.directory)
    if not directory.is_dir():
        raise FlowserveError(f"{directory} is not a directory")

    async def go() -> int:
        async with open_services(settings) as services:
            report = await import_flows(services.catalog, directory)
        for label, ids in (
            ("created", report.created),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
        ):
            print(f"{label}: {len(ids)}")
        for path, detail in report.rejected.items():
            print(f"rejected {path}: {detail}", file=sys.stderr)
        return 1 if report.rejected else 0

    return asyncio.run(go())


_LANGUAGES = {
    "curl": ("curl", "curl"),
    "python": ("python_requests", "Python (requests)"),
    "python-client": ("python_client", "Python (flowserve.client)"),
    "javascript": ("javascript", "JavaScript (fetch)"),
}


def cmd_snippets(args: argparse.Namespace) -> int:
    settings = _settings(args)
    base_url = (
        args.url or settings.public_url or f"http://{settings.host}:{settings.port}"
    ).rstrip("/")
    path = Path(args.flow)
    snippets: Snippets
    if path.suffix == ".json" or path.is_file():
        snippets = _local_snippets(path, base_url, args.input)
    else:
        snippets = _server_snippets(
            args.flow, base_url, args.api_key or settings.api_key, args.input
        )
    chosen = list(_LANGUAGES) if args.language == "all" else [args.language]
    blocks = []
    for name in chosen:
        attribute, title = _LANGUAGES[name]
        code = getattr(snippets, attribute)
        blocks.append(code if len(chosen) == 1 else f"### {title}\n{code}\n")
    print("\n".join(blocks))
    return 0


def _local_snippets(path: Path, base_url: str, input_value: str) -> Snippets:
    from flowserve.bootstrap import record_from_document
    from flowserve.components import build_registry
    from flowserve.flowfile import load_document
    from flowserve.runner import compile_graph
    from flowserve.snippets import build_snippets

    record = record_from_document(load_document(path.read_bytes()))
    graph = compile_graph(record, build_registry())
    return build_snippets(graph, record, base_url, input_value=input_value)


def _server_snippets(flow: str, base_url: str, api_key: str, input_value: str) -> Snippets:
    # The server builds them, from its public URL and the flow it stores.
    from flowserve.client import APIError, Client, ClientError
    from flowserve.snippets import Snippets

    try:
        with Client(base_url, api_key=api_key or None, timeout=30.0) as client:
            found = client.snippets(flow, input_value=input_value)
    except APIError as exc:
        raise FlowserveError(f"{base_url} answered {exc.status}: {exc.detail}") from exc
    except ClientError as exc:
        raise FlowserveError(str(exc)) from exc
    return msgspec.convert(msgspec.to_builtins(found), Snippets)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowserve", description=__doc__)
    parser.add_argument("--version", action="version", version=f"flowserve {__version__}")
    parser.add_argument("--env-file", help="read FLOWSERVE_* settings from this dotenv file")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--flows-dir", help="load every flow JSON in DIR (default ./flows)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run webhook and event-delivery jobs from Redis")
    worker.add_argument("--flows-dir", help="load every flow JSON in DIR (default ./flows)")
    worker.add_argument("--concurrency", type=int, help="jobs run at once")
    worker.set_defaults(func=cmd_worker)

    run = sub.add_parser("run", help="run one flow file and print its result")
    run.add_argument("flow", help="path to a Langflow flow JSON file")
    run.add_argument("--input", default=None, help="the input_value")
    run.add_argument("--input-type", default="chat", choices=("chat", "text", "any"))
    run.add_argument("--output-type", default="chat", choices=("chat", "text", "any", "debug"))
    run.add_argument("--tweaks", help="tweaks as a JSON object")
    run.add_argument("--session-id")
    run.add_argument("--json", action="store_true", help="print the full Langflow-shaped result")
    run.set_defaults(func=cmd_run)

    mcp = sub.add_parser(
        "mcp-config", help="print the JSON an MCP client (Claude Desktop, Cursor) needs"
    )
    mcp.add_argument(
        "--mode",
        choices=("proxy", "http"),
        default="proxy",
        help="proxy: a stdio bridge via uvx mcp-proxy (Claude Desktop); http: URL and headers",
    )
    mcp.add_argument("--transport", choices=("streamable", "sse"), default="streamable")
    mcp.add_argument("--key", help="the API key to put in the snippet")
    mcp.add_argument("--project", help="only this project's (folder's) flows")
    mcp.add_argument("--name", default="flowserve", help="the server's name in the client")
    mcp.set_defaults(func=cmd_mcp_config)
    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(func=cmd_migrate)

    imp = sub.add_parser("import", help="upsert every flow JSON of DIR by id (idempotent)")
    imp.add_argument("directory", metavar="DIR")
    imp.set_defaults(func=cmd_import)

    from flowserve import cli_keys

    cli_keys.register(sub, _settings)
    snippets = sub.add_parser(
        "snippets", help="print code (curl, Python, JavaScript) that runs a flow over HTTP"
    )
    snippets.add_argument(
        "flow", help="a flow JSON file, or the id or endpoint name of a flow on the server"
    )
    snippets.add_argument(
        "--url", help="the server's public base URL (default FLOWSERVE_PUBLIC_URL or host:port)"
    )
    snippets.add_argument("--api-key", help="API key for fetching from the server")
    snippets.add_argument(
        "--language", default="all", choices=("all", *_LANGUAGES), help="print only this one"
    )
    snippets.add_argument("--input", default="hello world!", help="the input the snippets send")
    snippets.set_defaults(func=cmd_snippets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except FlowserveError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
