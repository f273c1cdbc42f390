"""Store protocols: what the service layer needs from persistent state.

Flows and projects live in a ``FlowStore`` (PostgreSQL in production, a SQLite
file embedded); conversation messages in a ``MessageStore`` (Redis, or this
process); uploaded files in a ``FileStore`` (PostgreSQL, or a directory). Every
backend passes the same contract tests (``tests/store/``).
Backends translate their own exceptions at this boundary: a backend that
cannot be reached raises ``Unavailable``, a uniqueness clash ``Conflict`` or
``EndpointNameTaken``; callers never see asyncpg, sqlite3 or redis.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec

from flowserve.engine.types import Message

# The project every flow saved without a folder_id belongs to (created by migration 0001).
DEFAULT_PROJECT_ID = "00000000-0000-4000-8000-000000000001"
DEFAULT_PROJECT_NAME = "Starter Project"

ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def canonical_uuid(value: str) -> str | None:
    """``value`` as a lowercase hyphenated UUID, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


class FlowRecord(msgspec.Struct, kw_only=True):
    """A stored flow: its Langflow document plus the metadata we index."""

    id: str
    name: str
    data: dict[str, Any]
    description: str = ""
    endpoint_name: str | None = None
    access_type: str = "PRIVATE"
    webhook: bool = False
    mcp_enabled: bool = False
    folder_id: str | None = None
    session_ttl: int | None = None
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FlowRevision(msgspec.Struct, frozen=True):
    """One stored state of a flow: what an ETag names. The version alone would repeat
    when a flow is deleted and created again; the time of the write tells them apart."""

    version: int
    updated_at: datetime


class ProjectRecord(msgspec.Struct, kw_only=True):
    """A project (Langflow's folder): a named group of flows."""

    id: str
    name: str
    description: str = ""
    parent_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FlowFilter(msgspec.Struct, kw_only=True, frozen=True):
    """Exact-match filters of a flow listing; None means any."""

    name: str | None = None
    endpoint_name: str | None = None
    folder_id: str | None = None
    # Only flows with one of these ids (an empty tuple matches none): a restricted key's view.
    ids: tuple[str, ...] | None = None


class FlowStore(Protocol):
    async def get(self, ref: str) -> FlowRecord | None:
        """A flow by UUID or endpoint name."""
        ...

    async def get_many(self, ids: builtins.list[str]) -> builtins.list[FlowRecord]:
        """The flows among ``ids`` that exist (unknown and non-UUID ids are skipped)."""
        ...

    async def list(
        self, *, limit: int = 50, offset: int = 0, where: FlowFilter | None = None
    ) -> builtins.list[FlowRecord]:
        """Flows ordered by name then id."""
        ...

    async def count(self, where: FlowFilter | None = None) -> int: ...

    async def create(self, record: FlowRecord) -> FlowRecord:
        """Insert a new flow; ``Conflict`` when the id exists."""
        ...

    async def upsert(self, record: FlowRecord) -> tuple[FlowRecord, bool]:
        """Insert or replace by id (version + 1); returns the stored record and whether created."""
        ...

    async def upsert_many(
        self, records: builtins.list[FlowRecord]
    ) -> builtins.list[tuple[FlowRecord, bool]]:
        """``upsert`` each, in one transaction: all are written or none."""
        ...

    async def update(
        self, record: FlowRecord, *, expected: FlowRevision | None
    ) -> FlowRecord | None:
        """Replace an existing flow (version + 1) only while it is still at ``expected``
        (None: at any revision), checked by the write itself; None when no flow with this
        id is at that revision, and then nothing is written."""
        ...

    async def delete(self, flow_id: str) -> bool: ...

    async def delete_many(self, ids: builtins.list[str]) -> builtins.list[str]:
        """Delete in one transaction; returns the ids that existed."""
        ...

    async def versions(self, ids: builtins.list[str]) -> dict[str, int]:
        """Current version of each existing flow among ``ids`` (the cache's freshness check)."""
        ...

    async def list_projects(self) -> builtins.list[ProjectRecord]: ...

    async def get_project(self, project_id: str) -> ProjectRecord | None: ...

    async def create_project(self, record: ProjectRecord) -> ProjectRecord:
        """``Conflict`` when the name or id is taken."""
        ...

    async def update_project(self, record: ProjectRecord) -> ProjectRecord | None: ...

    async def delete_project(self, project_id: str) -> builtins.list[str] | None:
        """Delete a project and its flows; the deleted flow ids, or None if no such project."""
        ...

    async def migrate(self) -> builtins.list[str]:
        """Apply pending schema migrations; the names of those applied now."""
        ...

    async def ping(self) -> None:
        """Raise ``Unavailable`` when the backend cannot be reached."""
        ...

    async def close(self) -> None: ...


class MessageStore(Protocol):
    """Conversation messages per (flow, session), each session expiring after a sliding TTL.

    Every read or write of a session pushes its expiry ``ttl`` seconds ahead.
    """

    async def append(
        self, flow_id: str, session_id: str, messages: list[Message], ttl: int
    ) -> None: ...

    async def history(
        self,
        flow_id: str,
        session_id: str | None,
        *,
        limit: int,
        sender: str | None = None,
        order: str = "ASC",
        ttl: int,
    ) -> list[Message]:
        """The last ``limit`` messages of a session (every session when ``session_id`` is None)."""
        ...

    async def messages(
        self,
        *,
        flow_id: str | None = None,
        session_id: str | None = None,
        sender: str | None = None,
        sender_name: str | None = None,
        order: str = "ASC",
    ) -> list[Message]:
        """Messages matching every given filter, by timestamp; refreshes each session's TTL."""
        ...

    async def sessions(self, flow_id: str | None = None) -> builtins.list[str]:
        """Ids of the live sessions (of one flow, or of every flow), sorted; no TTL change."""
        ...

    async def delete_session(self, flow_id: str | None, session_id: str) -> int:
        """Delete a session (of one flow, or of every flow); the number of messages removed."""
        ...

    async def delete_flow(self, flow_id: str) -> int:
        """Delete every session of a deleted flow; the number of messages removed."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class KeyRecord(msgspec.Struct, kw_only=True, frozen=True):
    """A stored API key: never the key itself, only its SHA-256 and a visible prefix."""

    id: str
    name: str
    prefix: str
    key_hash: str
    scopes: tuple[str, ...]
    # None: every flow. Otherwise flow ids or endpoint names this key may touch.
    flows: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    created_at: datetime
    last_used_at: datetime | None = None
    total_uses: int = 0
    revoked_at: datetime | None = None


class KeyStore(Protocol):
    async def create(self, record: KeyRecord) -> KeyRecord: ...

    async def by_hash(self, key_hash: str) -> KeyRecord | None: ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def list(self) -> builtins.list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord | None:
        """Mark a key revoked (idempotent); None when there is no such key."""
        ...

    async def touch(self, key_id: str, used_at: datetime, uses: int) -> None:
        """Record ``uses`` more uses, the last at ``used_at`` (batched by the caller)."""
        ...

    async def count_usable(self, now: datetime) -> int:
        """How many keys are neither revoked nor expired."""
        ...

    async def ping(self) -> None: ...


class RateLimiter(Protocol):
    async def hit(self, bucket: str, limit: int, window: float) -> float:
        """Count one request in ``bucket``; 0 when allowed, else seconds until it would be."""
        ...


class KeyEvents(Protocol):
    """News of revoked keys shared between instances (Redis pub/sub)."""

    async def publish_revoked(self, key_id: str) -> None: ...

    def follow(self, on_revoked: Callable[[str], None], on_gap: Callable[[], None]) -> None: ...

    async def aclose(self) -> None: ...


class FileRecord(msgspec.Struct, kw_only=True, frozen=True):
    """An uploaded (or component-saved) file: its metadata; the bytes live beside it.

    ``path`` is what the API hands out and the File component is given back: unique
    among stored files, made by us (``<owner>/<id>.<ext>``, or ``<flow_id>/<name>`` for
    Langflow's v1 flow uploads), never a filesystem path.
    """

    id: str
    # Who uploaded it: the key's id ("bootstrap" for FLOWSERVE_API_KEY, "local" with
    # auth off). Only that owner and admin keys may read or delete it.
    owner: str
    # The sanitised original file name, extension included.
    name: str
    path: str
    size: int = 0
    content_type: str = "application/octet-stream"
    created_at: datetime
    # Set for v1 uploads (``/api/v1/files/upload/{flow_id}``): deleted with the flow.
    flow_id: str | None = None


class FileStore(Protocol):
    """File bytes and metadata. A ``put`` is all or nothing: a reader sees the whole
    file or none of it, never part (a temp file renamed into place, or one transaction)."""

    async def put(self, record: FileRecord, content: AsyncIterable[bytes]) -> FileRecord:
        """Store ``content`` as ``record`` (its ``size`` is counted here); a file already
        stored at ``record.path`` is replaced in the same step."""
        ...

    async def get(self, file_id: str) -> FileRecord | None: ...

    async def by_path(self, path: str) -> FileRecord | None: ...

    def read(self, record: FileRecord) -> AsyncIterator[bytes]:
        """The file's bytes in chunks; ``FileNotFound`` when it is gone."""
        ...

    async def list(
        self, *, owner: str | None = None, flow_id: str | None = None
    ) -> builtins.list[FileRecord]:
        """Files of ``owner`` (None: every owner), oldest first: those of one flow's v1
        uploads when ``flow_id`` is given, else those tied to no flow."""
        ...

    async def rename(self, file_id: str, name: str) -> FileRecord | None: ...

    async def delete(self, file_id: str) -> bool: ...

    async def delete_flow(self, flow_id: str) -> int:
        """Delete a deleted flow's v1 uploads; how many went."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


# ---- Vector collections (knowledge bases) -----------------------------------------------------


class EmbeddingModelRef(msgspec.Struct, frozen=True):
    """Which model made a collection's vectors: every later vector must come from it too."""

    provider: str
    name: str


class CollectionRecord(msgspec.Struct, kw_only=True, frozen=True):
    """A named collection of embedded chunks (a Langflow knowledge base) of one owner."""

    owner: str
    name: str
    model: EmbeddingModelRef
    # Fixed by the first chunks added; None while the collection is empty.
    dimension: int | None = None
    chunks: int = 0
    created_at: datetime | None = None


class Chunk(msgspec.Struct, kw_only=True, frozen=True):
    """A piece of text to store, with its embedding and metadata (JSON values)."""

    text: str
    embedding: tuple[float, ...]
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    # Identifies the content for duplicate detection (Langflow's ``_id``: a SHA-256).
    content_hash: str = ""


class ChunkHit(msgspec.Struct, kw_only=True, frozen=True):
    """A stored chunk found by a search; ``score`` is the cosine similarity (None: no query)."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float | None = None
    embedding: tuple[float, ...] | None = None


# Metadata filter: every key must match, any of a key's values may (Langflow's semantics).
# A stored value matches when it, or one element of a stored list, equals a value as text.
MetadataFilter = dict[str, builtins.list[str]]

# A collection's name: Langflow's knowledge-base names, which double as table names there.
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,99}$")
MAX_DIMENSION = 16000  # pgvector's limit for a stored vector


def filter_text(value: Any) -> str:
    """A metadata value as compared with a filter's text (JSON's spelling for non-strings)."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def metadata_matches(metadata: dict[str, Any], where: MetadataFilter | None) -> bool:
    if not where:
        return True
    for key, wanted in where.items():
        if key not in metadata:
            return False
        value = metadata[key]
        stored = (
            {filter_text(v) for v in value} if isinstance(value, list) else {filter_text(value)}
        )
        if not stored & set(wanted):
            return False
    return True


class VectorStore(Protocol):
    """Collections of embedded chunks, per owner ("" for the server's own), searched by
    cosine similarity. A collection's dimension is set by its first chunks; a vector of
    another dimension is refused (``DimensionMismatch``, 422)."""

    async def ensure_collection(
        self, owner: str, name: str, model: EmbeddingModelRef
    ) -> tuple[CollectionRecord, bool]:
        """The collection, created with ``model`` when missing; and whether it was created."""
        ...

    async def get_collection(self, owner: str, name: str) -> CollectionRecord | None: ...

    async def list_collections(self, owner: str) -> builtins.list[CollectionRecord]:
        """The owner's collections by name."""
        ...

    async def delete_collection(self, owner: str, name: str) -> bool: ...

    async def add(
        self, owner: str, name: str, chunks: builtins.list[Chunk], *, allow_duplicates: bool
    ) -> int:
        """Store chunks in one transaction; without ``allow_duplicates`` a chunk whose
        ``content_hash`` is already stored (or repeats in ``chunks``) is skipped.
        Returns how many were stored; ``NotFound`` for an unknown collection."""
        ...

    async def stored_hashes(self, owner: str, name: str, hashes: builtins.list[str]) -> set[str]:
        """Which of ``hashes`` the collection holds (to skip embedding known chunks)."""
        ...

    async def search(
        self,
        owner: str,
        name: str,
        embedding: tuple[float, ...] | None,
        *,
        k: int,
        where: MetadataFilter | None = None,
        include_embeddings: bool = False,
    ) -> builtins.list[ChunkHit]:
        """The ``k`` chunks most similar to ``embedding`` (best first), or the first ``k``
        stored when ``embedding`` is None, among those matching ``where``."""
        ...

    async def ping(self) -> None: ...


class QueryResult(msgspec.Struct, kw_only=True):
    """What one query returned: its columns, at most ``max_rows`` rows (``truncated``
    says more were there), and the command status (``INSERT 0 1``) for other statements."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    status: str = ""


class QueryDatabase(Protocol):
    """The operator's database for the SQL Database component (FLOWSERVE_SQL_DATABASE_URL).

    Each query is one statement in a transaction of its own, read-only unless the
    operator allowed writes, cut off after the configured time. Failures of the
    query are ``QueryFailed``; a database that cannot be reached is ``Unavailable``.
    """

    async def query(self, sql: str) -> QueryResult: ...

    async def close(self) -> None: ...
