"""``flowserve keys create | list | revoke``: manage API keys in the configured database.

The keys live where the server reads them (``FLOWSERVE_DATABASE_URL``, else
the SQLite file), so a server started later, or already running, accepts them.
``create`` prints the key alone on stdout (``KEY=$(flowserve keys create ...)``)
and everything else on stderr; the key is never shown again.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta

import msgspec

from flowserve.access import SCOPES, Access
from flowserve.errors import Invalid
from flowserve.logs import configure_logging
from flowserve.settings import Settings
from flowserve.store.base import KeyRecord

_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``12h``, ``30d``, ``2w``."""
    match = _DURATION.match(text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise Invalid(f"--expires-in {text!r}: expected a positive duration like 3600, 12h or 30d")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(f"--expires-at {text!r}: expected an ISO 8601 time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@asynccontextmanager
async def open_access(settings: Settings) -> AsyncIterator[Access]:
    from flowserve.bootstrap import access_backends, open_flow_store, open_key_store

    async with AsyncExitStack() as stack:
        flows = await open_flow_store(settings)
        stack.push_async_callback(flows.close)
        client = None
        if settings.redis_url:
            from flowserve.store.redis import connect

            client = connect(
                settings.redis_url,
                pool_size=settings.redis_pool_size,
                pool_timeout=settings.redis_pool_timeout,
            )
            stack.push_async_callback(client.aclose)
        # Revocations are announced, so running servers drop the key at once.
        access = Access(settings, open_key_store(flows), *access_backends(settings, client))
        stack.push_async_callback(access.aclose)
        yield access


def require_a_key(settings: Settings) -> None:
    """Raise ``SettingsError`` when auth is on and no key could ever authenticate."""

    async def go() -> None:
        async with open_access(settings) as access:
            await access.start()

    asyncio.run(go())


def _status(record: KeyRecord, now: datetime) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active"


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    if args.expires_in and args.expires_at:
        raise Invalid("Give --expires-in or --expires-at, not both")
    expires_at = None
    if args.expires_in:
        expires_at = datetime.now(UTC) + parse_duration(args.expires_in)
    elif args.expires_at:
        expires_at = parse_time(args.expires_at)

    async def go() -> tuple[KeyRecord, str]:
        async with open_access(settings) as access:
            return await access.create_key(
                name=args.name or "",
                scopes=args.scope or ["read", "execute"],
                flows=args.flow,
                expires_at=expires_at,
            )

    record, key = asyncio.run(go())
    if args.json:
        from flowserve.api.keys import key_view

        sys.stdout.buffer.write(msgspec.json.encode(key_view(record, key)) + b"\n")
        return 0
    print(key)
    limits = f"flows {', '.join(record.flows)}" if record.flows else "every flow"
    print(
        f"Created API key '{record.name}' (id {record.id}): scopes {', '.join(record.scopes)}; "
        f"{limits}; expires {_when(record.expires_at) if record.expires_at else 'never'}.\n"
        "Store it now: it is not shown again.",
        file=sys.stderr,
    )
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> list[KeyRecord]:
        async with open_access(settings) as access:
            return await access.list_keys()

    records = asyncio.run(go())
    if args.json:
        from flowserve.api.keys import key_view

        sys.stdout.buffer.write(msgspec.json.encode([key_view(r) for r in records]) + b"\n")
        return 0
    now = datetime.now(UTC)
    rows = [("ID", "NAME", "PREFIX", "SCOPES", "FLOWS", "EXPIRES", "LAST USED", "STATUS")]
    for r in records:
        rows.append(
            (
                r.id,
                r.name,
                r.prefix,
                ",".join(r.scopes),
                ",".join(r.flows) if r.flows else "*",
                _when(r.expires_at),
                _when(r.last_used_at),
                _status(r, now),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def go() -> KeyRecord:
        async with open_access(settings) as access:
            return await access.revoke_key(args.id)

    record = asyncio.run(go())
    print(f"Revoked API key '{record.name}' ({record.id})")
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    settings_of: Callable[[argparse.Namespace], Settings],
) -> None:
    """Add ``keys`` and its subcommands to the ``flowserve`` parser."""
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)

    def bind(
        command: Callable[[argparse.Namespace, Settings], int],
    ) -> Callable[[argparse.Namespace], int]:
        def run(args: argparse.Namespace) -> int:
            settings = settings_of(args)
            configure_logging("warning", json=settings.log_json)
            return command(args, settings)

        return run

    create = actions.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--name", help="what the key is for")
    create.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help="repeat for several (default: read and execute; admin implies all)",
    )
    create.add_argument(
        "--flow", action="append", help="restrict to this flow id or endpoint name (repeatable)"
    )
    create.add_argument("--expires-in", help="lifetime: 3600, 12h, 30d, 2w")
    create.add_argument("--expires-at", help="expiry time, ISO 8601 (UTC when no offset)")
    create.add_argument("--json", action="store_true", help="print the key's record as JSON")
    create.set_defaults(func=bind(cmd_create))

    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=bind(cmd_list))

    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    revoke.set_defaults(func=bind(cmd_revoke))
