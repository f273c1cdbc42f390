"""One typed settings object, read once from ``FLOWSERVE_*`` environment variables.

``Settings.from_env()`` strips the prefix, lowercases the names and converts the
strings with msgspec (so ``FLOWSERVE_PORT=8000`` becomes an int); a variable
with the prefix that names no setting is an error, so typos do not pass
silently. Settings are passed down explicitly and never logged whole.
"""

from __future__ import annotations

import os
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


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Serving
    host: str = "127.0.0.1"
    port: Port = 7860
    workers: Positive = 1
    flows_dir: str = "flows"
    root_path: str = ""
    public_url: str = ""
    forwarded_allow_ips: str = "127.0.0.1"
    cors_origins: str = ""

    # State: unset means the embedded default (SQLite file + in-process stores).
    database_url: str = ""
    redis_url: str = ""
    redis_prefix: str = "flowserve:"
    sqlite_path: str = "flowserve.db"
    migrate_on_start: bool = True
    session_ttl: Positive = 1800

    # Access control
    api_key: str = ""
    auth: Literal["on", "off"] = "on"

    # Limits
    max_body_bytes: Positive = 32 * 1024 * 1024
    run_timeout: Seconds = 300.0
    max_concurrent_runs: Positive = 1024

    # Logs
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = True
    # One JSON line per request (method, path, status, duration, request id). Off saves
    # about a tenth of the CPU of a trivial run; errors are logged either way.
    access_log: bool = True

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def flows_path(self) -> Path:
        return Path(self.flows_dir)

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


def process_environment() -> dict[str, str]:
    """A snapshot of the environment: the global variables flows may reference."""
    return dict(os.environ)
