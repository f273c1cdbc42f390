"""The ``flowserve`` command: serve the API, or run one flow file from the shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from flowserve import __version__
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
    config = {
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "root_path": settings.root_path,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "proxy_headers": True,
        "access_log": False,
        "log_level": settings.log_level,
        "server_header": False,
        "timeout_graceful_shutdown": 30,
    }
    if settings.workers > 1:
        # Worker processes rebuild the app from the environment: pass our overrides on.
        _export_overrides(settings)
        uvicorn.run("flowserve.app:app_from_env", factory=True, **config)  # type: ignore[arg-type]
    else:
        from flowserve.app import create_app

        uvicorn.run(create_app(settings), **config)  # type: ignore[arg-type]
    return 0


def _export_overrides(settings: Settings) -> None:
    import os

    for name in ("host", "port", "flows_dir"):
        os.environ[f"FLOWSERVE_{name.upper()}"] = str(getattr(settings, name))  # noqa: TID251


def cmd_run(args: argparse.Namespace) -> int:
    from flowserve.bootstrap import open_services, record_from_document
    from flowserve.flowfile import load_document
    from flowserve.results import main_text
    from flowserve.runner import RunRequest

    settings = _settings(args, flows_dir="")
    configure_logging("warning", json=settings.log_json)
    tweaks = msgspec.json.decode(args.tweaks) if args.tweaks else None
    if tweaks is not None and not isinstance(tweaks, dict):
        raise FlowserveError("--tweaks must be a JSON object")

    content = Path(args.flow).read_bytes()

    async def go() -> bytes | str:
        async with open_services(settings) as services:
            record = record_from_document(load_document(content))
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

    run = sub.add_parser("run", help="run one flow file and print its result")
    run.add_argument("flow", help="path to a Langflow flow JSON file")
    run.add_argument("--input", default=None, help="the input_value")
    run.add_argument("--input-type", default="chat", choices=("chat", "text", "any"))
    run.add_argument("--output-type", default="chat", choices=("chat", "text", "any", "debug"))
    run.add_argument("--tweaks", help="tweaks as a JSON object")
    run.add_argument("--session-id")
    run.add_argument("--json", action="store_true", help="print the full Langflow-shaped result")
    run.set_defaults(func=cmd_run)

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
