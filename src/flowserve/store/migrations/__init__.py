"""Versioned SQL migrations for the flow database, one directory per backend.

Adding a migration: drop ``NNNN_short_name.sql`` (the next number, four digits)
into ``postgres/`` and an equivalent into ``sqlite/``. Files run in version
order, each in its own transaction together with its row in
``schema_migrations (version, name, applied_at)``, so a failing file leaves
nothing behind. Applied versions are never run again; never edit an applied
file, add a new one.

Postgres serialises concurrent runners (two instances starting at once) with a
transaction-scoped advisory lock; SQLite with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from flowserve.errors import FlowserveError

Backend = Literal["postgres", "sqlite"]

# pg_advisory_xact_lock key: any constant unique to flowserve ("flowsrv" in ASCII).
ADVISORY_LOCK_KEY = 0x666C6F77737276

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

SCHEMA_TABLE = {
    "postgres": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    ),
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    ),
}


class MigrationError(FlowserveError):
    code = "migration_failed"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(backend: Backend) -> list[Migration]:
    """Every migration shipped for ``backend``, in version order."""
    found: list[Migration] = []
    for entry in resources.files(__package__).joinpath(backend).iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"Two {backend} migrations share a version number: {versions}")
    return found


def pending(backend: Backend, applied: set[int]) -> list[Migration]:
    return [m for m in migrations(backend) if m.version not in applied]
