"""The file service: naming, size limits and who may see what, over one ``FileStore``.

Used by the files API (``api/files.py``) and, as ``services["files"]``
(``engine.RunFiles``), by the File and SaveToFile components. A file belongs to
the key that stored it; a key sees, reads and deletes only its own files, an
admin key every file. Nothing here ever touches a path a caller chose: ids are
UUIDs we make, paths are strings we make and look up in the store.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from flowserve.access import Principal
from flowserve.engine import RunOwner
from flowserve.errors import BadRequest, Conflict, FileNotFound, Invalid, PayloadTooLarge
from flowserve.store.base import FileRecord, FileStore

# The owner of files stored with FLOWSERVE_AUTH=off (every caller is the same admin).
LOCAL_OWNER = "local"
MAX_NAME_BYTES = 255
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,16}$")
_FORBIDDEN = ("/", "\\", "\x00", "\r", "\n")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_SHOWN_PATH = 200


def owner_of(principal: Principal) -> RunOwner | None:
    """The owner a caller's files are stored under; None for an anonymous caller."""
    admin = "admin" in principal.scopes
    if principal.key_id is None:
        return RunOwner(LOCAL_OWNER, admin=True) if admin else None
    return RunOwner(principal.key_id, admin=admin)


def owner_payload(owner: RunOwner | None) -> dict[str, Any] | None:
    """A run owner as a queued job carries it (None: an anonymous run)."""
    return None if owner is None else {"id": owner.id, "admin": owner.admin}


def owner_from_payload(payload: Any) -> RunOwner | None:
    """The run owner a job was queued with, read back; None when it carries none."""
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        return None
    return RunOwner(payload["id"], admin=payload.get("admin") is True)


def name_problem(name: str | None) -> str | None:
    """Why ``name`` cannot name a stored file (a path, control characters, too long), or None."""
    if not name or not name.strip():
        return "A file name is required"
    if any(c in name for c in _FORBIDDEN) or ".." in name:
        return "Invalid file name: paths, '..', NUL and CR/LF are not allowed in file names"
    if any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in name):
        return "Invalid file name: control and invisible formatting characters are not allowed"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"File name is too long: at most {MAX_NAME_BYTES} bytes"
    return None


def extension(name: str) -> str:
    """The name's extension (".pdf"), lowercased, or "" when it has none we would keep."""
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 else ""
    return suffix.lower() if _EXTENSION.match(suffix) else ""


def content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def stem(name: str) -> str:
    """The name without its extension: what Langflow's v2 API calls a file's name."""
    ext = extension(name)
    return name[: -len(ext)] if ext else name


def shown(path: str) -> str:
    """A caller's path, safe to repeat in an error message."""
    cut = path if len(path) <= _SHOWN_PATH else path[:_SHOWN_PATH] + "..."
    return cut.encode("unicode_escape").decode("ascii")


async def bounded(content: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    """``content``, refused with a 413 once it passes ``limit`` bytes (nothing is kept)."""
    size = 0
    async for chunk in content:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"File exceeds the limit of {limit} bytes")
        yield chunk


async def _one(content: bytes) -> AsyncIterator[bytes]:
    yield content


class Files:
    def __init__(self, store: FileStore, *, max_bytes: int, provider: str) -> None:
        self.store = store
        self.max_bytes = max_bytes
        # Which backend holds the bytes ("database" or "directory"), for operators.
        self.provider = provider

    @staticmethod
    def visible(record: FileRecord, owner: RunOwner | None) -> bool:
        return owner is not None and (owner.admin or record.owner == owner.id)

    async def upload(
        self,
        owner: RunOwner,
        name: str | None,
        content: AsyncIterable[bytes],
        *,
        flow_id: str | None = None,
    ) -> FileRecord:
        """Store an upload: ``<owner>/<id><ext>``, or ``<flow_id>/<name>`` for a flow's
        (v1) upload, which replaces the owner's earlier file of that name there."""
        problem = name_problem(name)
        if problem is not None or name is None:
            raise BadRequest(problem or "A file name is required")
        file_id = str(uuid.uuid4())
        if flow_id is None:
            path = f"{owner.id}/{file_id}{extension(name)}"
        else:
            path = f"{flow_id}/{name}"
            existing = await self.store.by_path(path)
            if existing is not None and not self.visible(existing, owner):
                raise Conflict(f"Another key's file named '{name}' is stored with this flow")
        record = FileRecord(
            id=file_id,
            owner=owner.id,
            name=name,
            path=path,
            content_type=content_type(name),
            created_at=datetime.now(UTC),
            flow_id=flow_id,
        )
        return await self.store.put(record, bounded(content, self.max_bytes))

    async def get(self, file_id: str, owner: RunOwner | None) -> FileRecord:
        """A file the caller may see; 404 otherwise (whether or not it exists)."""
        record = await self.store.get(file_id)
        if record is None or not self.visible(record, owner):
            raise FileNotFound(f"File {shown(file_id)} not found")
        return record

    async def in_flow(self, flow_id: str, name: str, owner: RunOwner | None) -> FileRecord:
        record = await self.store.by_path(f"{flow_id}/{name}")
        if record is None or record.flow_id is None or not self.visible(record, owner):
            raise FileNotFound(f"File {shown(name)} not found in flow {flow_id}")
        return record

    async def list(self, owner: RunOwner | None, *, flow_id: str | None = None) -> list[FileRecord]:
        if owner is None:
            return []
        return await self.store.list(owner=None if owner.admin else owner.id, flow_id=flow_id)

    async def rename(self, file_id: str, new_stem: str, owner: RunOwner | None) -> FileRecord:
        """Langflow's rename: the name changes, the extension (and the path) stays."""
        record = await self.get(file_id, owner)
        name = new_stem + extension(record.name)
        problem = name_problem(name)
        if problem is not None:
            raise BadRequest(problem)
        renamed = await self.store.rename(record.id, name)
        if renamed is None:
            raise FileNotFound(f"File {shown(file_id)} not found")
        return renamed

    async def delete(self, record: FileRecord) -> None:
        await self.store.delete(record.id)

    def content(self, record: FileRecord) -> AsyncIterator[bytes]:
        return self.store.read(record)

    # ---- engine.RunFiles: what components may do --------------------------------------

    async def read(self, path: str, *, reader: RunOwner | None, trusted: bool) -> tuple[str, bytes]:
        record = await self.store.by_path(path) if path and len(path) <= 2048 else None
        if record is None or not (trusted or self.visible(record, reader)):
            raise FileNotFound(f"No file at path '{shown(path)}' that this run may read")
        if record.size > self.max_bytes:
            raise PayloadTooLarge(
                f"File '{shown(path)}' exceeds the limit of {self.max_bytes} bytes"
            )
        chunks = [chunk async for chunk in self.store.read(record)]
        return record.name, b"".join(chunks)

    async def save(self, name: str, content: bytes, *, owner: RunOwner) -> str:
        try:
            record = await self.upload(owner, name, _one(content))
        except BadRequest as exc:  # in a run, the flow's configuration is what is wrong
            raise Invalid(f"File name '{shown(name)}': {exc.detail}") from exc
        return record.path
