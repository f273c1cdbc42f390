"""``DirectoryFileStore``: uploaded files in a local directory (the embedded default).

Layout under the root (``FLOWSERVE_FILES_DIR``)::

    objects/<id>          the bytes
    meta/<id>.json        the FileRecord: a file exists once this is in place
    paths/<sha256(path)>  the id of the file at that path (lookups by path)
    tmp/                  files being written

Every write goes to ``tmp/`` first and is renamed into place (``os.replace`` is
atomic on one filesystem), bytes before metadata before the path entry, so a
reader never sees part of a file; a crash can leave an unreferenced object
behind, never a half-written one. File names never come from a request: ids are
UUIDs we make (checked again before any path is built) and paths are hashed.
Blocking file work runs in threads.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import IO, ParamSpec, TypeVar

import msgspec

from flowserve.errors import FileNotFound, Unavailable
from flowserve.store.base import FileRecord, canonical_uuid

CHUNK = 1024 * 1024

P = ParamSpec("P")
T = TypeVar("T")

_decoder = msgspec.json.Decoder(FileRecord)
_encoder = msgspec.json.Encoder()


def _unavailable(exc: OSError) -> Unavailable:
    return Unavailable(f"The file storage directory cannot be used: {exc.strerror or exc}")


def _path_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()


class DirectoryFileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._meta = root / "meta"
        self._paths = root / "paths"
        self._tmp = root / "tmp"
        # Serialises this process's metadata changes (replace, rename, delete).
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, root: Path) -> DirectoryFileStore:
        store = cls(root)
        try:
            await asyncio.to_thread(store._make_dirs)
        except OSError as exc:
            raise _unavailable(exc) from exc
        return store

    def _make_dirs(self) -> None:
        for directory in (self._objects, self._meta, self._paths, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)

    # ---- synchronous helpers (run in threads) -------------------------------------------

    def _object(self, file_id: str) -> Path:
        uid = canonical_uuid(file_id)
        if uid is None or uid != file_id:  # never a name a request could shape
            raise FileNotFound(f"File {file_id} not found")
        return self._objects / uid

    def _meta_file(self, file_id: str) -> Path:
        self._object(file_id)  # the same check
        return self._meta / f"{file_id}.json"

    def _write_atomic(self, target: Path, data: bytes) -> None:
        tmp = self._tmp / f"{target.name}.{uuid.uuid4().hex}.part"
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)

    def _load(self, file_id: str) -> FileRecord | None:
        try:
            return _decoder.decode(self._meta_file(file_id).read_bytes())
        except FileNotFoundError:
            return None
        except FileNotFound:
            return None
        except msgspec.DecodeError:
            return None  # a torn write cannot happen (rename); a foreign file is ignored

    def _path_owner(self, path: str) -> str | None:
        try:
            return (self._paths / _path_key(path)).read_text("ascii").strip() or None
        except FileNotFoundError:
            return None

    def _by_path(self, path: str) -> FileRecord | None:
        file_id = self._path_owner(path)
        record = self._load(file_id) if file_id else None
        return record if record is not None and record.path == path else None

    def _commit(self, record: FileRecord) -> str | None:
        """Metadata, then the path entry; returns the id of the file this one replaced."""
        self._write_atomic(self._meta_file(record.id), _encoder.encode(record))
        replaced = self._path_owner(record.path)
        self._write_atomic(self._paths / _path_key(record.path), record.id.encode("ascii"))
        return replaced if replaced != record.id else None

    def _remove(self, record: FileRecord) -> None:
        entry = self._paths / _path_key(record.path)
        if self._path_owner(record.path) == record.id:
            entry.unlink(missing_ok=True)
        self._meta_file(record.id).unlink(missing_ok=True)
        self._object(record.id).unlink(missing_ok=True)

    def _scan(self, owner: str | None, flow_id: str | None) -> builtins.list[FileRecord]:
        found: builtins.list[FileRecord] = []
        for entry in self._meta.glob("*.json"):
            record = self._load(entry.stem)
            if record is None or record.flow_id != flow_id:
                continue
            if owner is None or record.owner == owner:
                found.append(record)
        found.sort(key=lambda r: (r.created_at, r.id))
        return found

    # ---- the FileStore protocol ---------------------------------------------------------

    async def put(self, record: FileRecord, content: AsyncIterable[bytes]) -> FileRecord:
        target = self._object(record.id)
        tmp = self._tmp / f"{record.id}.part"
        size = 0
        try:
            handle: IO[bytes] = await asyncio.to_thread(tmp.open, "wb")
            try:
                async for chunk in content:
                    await asyncio.to_thread(handle.write, chunk)
                    size += len(chunk)
                await asyncio.to_thread(_sync_close, handle)
            except BaseException:
                handle.close()
                tmp.unlink(missing_ok=True)
                raise
            await asyncio.to_thread(os.replace, tmp, target)
            stored = msgspec.structs.replace(record, size=size)
            async with self._lock:
                replaced = await asyncio.to_thread(self._commit, stored)
                if replaced is not None:
                    old = await asyncio.to_thread(self._load, replaced)
                    if old is not None:
                        await asyncio.to_thread(self._remove, old)
        except OSError as exc:
            raise _unavailable(exc) from exc
        return stored

    async def get(self, file_id: str) -> FileRecord | None:
        uid = canonical_uuid(file_id)
        return await self._guarded(self._load, uid) if uid is not None else None

    async def by_path(self, path: str) -> FileRecord | None:
        return await self._guarded(self._by_path, path)

    async def read(self, record: FileRecord) -> AsyncIterator[bytes]:
        try:
            handle: IO[bytes] = await asyncio.to_thread(self._object(record.id).open, "rb")
        except FileNotFoundError as exc:
            raise FileNotFound(f"File {record.id} not found") from exc
        except OSError as exc:
            raise _unavailable(exc) from exc
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def list(
        self, *, owner: str | None = None, flow_id: str | None = None
    ) -> builtins.list[FileRecord]:
        wanted = canonical_uuid(flow_id) if flow_id is not None else None
        if flow_id is not None and wanted is None:
            return []
        return await self._guarded(self._scan, owner, wanted)

    async def rename(self, file_id: str, name: str) -> FileRecord | None:
        async with self._lock:
            record = await self.get(file_id)
            if record is None:
                return None
            renamed = msgspec.structs.replace(record, name=name)
            data = _encoder.encode(renamed)
            await self._guarded(self._write_atomic, self._meta_file(record.id), data)
            return renamed

    async def delete(self, file_id: str) -> bool:
        async with self._lock:
            record = await self.get(file_id)
            if record is None:
                return False
            await self._guarded(self._remove, record)
            return True

    async def delete_flow(self, flow_id: str) -> int:
        removed = 0
        for record in await self.list(flow_id=flow_id):
            removed += await self.delete(record.id)
        return removed

    async def ping(self) -> None:
        writable = await asyncio.to_thread(os.access, self._tmp, os.W_OK | os.X_OK)
        if not writable:
            raise Unavailable(f"The file storage directory {self.root} is not writable")

    async def close(self) -> None:
        return None

    async def _guarded(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.to_thread(work, *args, **kwargs)
        except OSError as exc:
            raise _unavailable(exc) from exc


def _sync_close(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
