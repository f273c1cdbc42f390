"""The FileStore contract, run against every backend: a directory and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowserve.errors import PayloadTooLarge
from flowserve.files import bounded
from flowserve.store.base import FileRecord, FileStore
from flowserve.store.directory_files import DirectoryFileStore
from flowserve.store.postgres import PostgresFlowStore
from flowserve.store.postgres_files import CHUNK, PostgresFileStore


@pytest.fixture(params=["directory", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backend's name, and for PostgreSQL a clean database's DSN."""
    dsn = request.getfixturevalue("clean_pg") if request.param == "postgres" else ""
    return request.param, dsn


@pytest.fixture
async def files(backend: tuple[str, str], tmp_path: Path) -> AsyncIterator[FileStore]:
    name, dsn = backend
    if name == "directory":
        yield await DirectoryFileStore.open(tmp_path / "files")
        return
    pg = await PostgresFlowStore.open(dsn)
    try:
        yield PostgresFileStore(pg.pool)
    finally:
        await pg.close()


_clock = datetime(2026, 1, 1, tzinfo=UTC)


def record(owner: str = "key-a", *, flow_id: str | None = None, **fields: object) -> FileRecord:
    global _clock
    _clock += timedelta(seconds=1)
    file_id = str(uuid.uuid4())
    values: dict[str, object] = {
        "id": file_id,
        "owner": owner,
        "name": "notes.txt",
        "path": f"{flow_id}/notes.txt" if flow_id else f"{owner}/{file_id}.txt",
        "content_type": "text/plain",
        "created_at": _clock,
        "flow_id": flow_id,
    }
    values.update(fields)
    return FileRecord(**values)  # type: ignore[arg-type]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def content(store: FileStore, stored: FileRecord) -> bytes:
    return b"".join([chunk async for chunk in store.read(stored)])


async def test_stored_file_is_found_by_id_and_path_with_its_bytes(files: FileStore) -> None:
    stored = await files.put(record(), chunks(b"hello ", b"world"))
    assert stored.size == 11
    assert await files.get(stored.id) == stored
    assert await files.by_path(stored.path) == stored
    assert await content(files, stored) == b"hello world"
    assert await files.get(str(uuid.uuid4())) is None
    assert await files.get("../../etc/passwd") is None
    assert await files.by_path("/etc/passwd") is None


async def test_large_file_is_stored_in_chunks_and_read_back_whole(files: FileStore) -> None:
    data = bytes(range(256)) * (CHUNK // 256 * 2 + 10)  # a bit over two chunks
    stored = await files.put(record(), chunks(data[:1000], data[1000:]))
    assert stored.size == len(data)
    assert await content(files, stored) == data


async def test_empty_file_is_stored(files: FileStore) -> None:
    stored = await files.put(record(), chunks())
    assert stored.size == 0
    assert await content(files, stored) == b""


async def test_listing_is_by_owner_and_by_flow_oldest_first(files: FileStore) -> None:
    flow = str(uuid.uuid4())
    first = await files.put(record("key-a"), chunks(b"1"))
    second = await files.put(record("key-a"), chunks(b"2"))
    other = await files.put(record("key-b"), chunks(b"3"))
    in_flow = await files.put(record("key-a", flow_id=flow), chunks(b"4"))
    assert [f.id for f in await files.list(owner="key-a")] == [first.id, second.id]
    assert [f.id for f in await files.list()] == [first.id, second.id, other.id]
    assert [f.id for f in await files.list(flow_id=flow)] == [in_flow.id]
    assert await files.list(owner="key-b", flow_id=flow) == []
    assert await files.list(flow_id="not-a-uuid") == []


async def test_a_file_at_the_same_path_replaces_the_old_one(files: FileStore) -> None:
    flow = str(uuid.uuid4())
    old = await files.put(record(flow_id=flow), chunks(b"old"))
    new = await files.put(record(flow_id=flow), chunks(b"new"))
    assert await files.get(old.id) is None
    assert await files.by_path(new.path) == new
    assert await content(files, new) == b"new"
    assert [f.id for f in await files.list(flow_id=flow)] == [new.id]


async def test_failed_upload_leaves_nothing_behind(files: FileStore) -> None:
    flow = str(uuid.uuid4())
    kept = await files.put(record(flow_id=flow), chunks(b"kept"))
    failing = record(flow_id=flow)
    with pytest.raises(PayloadTooLarge):
        await files.put(failing, bounded(chunks(b"x" * 10, b"y" * 10), 15))
    assert await files.get(failing.id) is None
    assert await files.by_path(kept.path) == kept  # the earlier file is untouched
    assert await content(files, kept) == b"kept"
    assert [f.id for f in await files.list(flow_id=flow)] == [kept.id]


async def test_rename_changes_only_the_name(files: FileStore) -> None:
    stored = await files.put(record(), chunks(b"data"))
    renamed = await files.rename(stored.id, "report.txt")
    assert renamed is not None
    assert renamed.name == "report.txt"
    assert renamed.path == stored.path
    assert await files.get(stored.id) == renamed
    assert await files.rename(str(uuid.uuid4()), "x.txt") is None


async def test_delete_removes_the_file_once(files: FileStore) -> None:
    stored = await files.put(record(), chunks(b"data"))
    assert await files.delete(stored.id) is True
    assert await files.delete(stored.id) is False
    assert await files.get(stored.id) is None
    assert await files.by_path(stored.path) is None
    assert await files.list() == []


async def test_deleting_a_flow_deletes_only_its_files(files: FileStore) -> None:
    flow, other_flow = str(uuid.uuid4()), str(uuid.uuid4())
    await files.put(record(flow_id=flow, path=f"{flow}/a.txt"), chunks(b"a"))
    await files.put(record(flow_id=flow, path=f"{flow}/b.txt"), chunks(b"b"))
    kept = await files.put(record(flow_id=other_flow), chunks(b"c"))
    mine = await files.put(record(), chunks(b"d"))
    assert await files.delete_flow(flow) == 2
    assert await files.list(flow_id=flow) == []
    assert [f.id for f in await files.list(flow_id=other_flow)] == [kept.id]
    assert [f.id for f in await files.list()] == [mine.id]


async def test_ping_succeeds_on_a_working_store(files: FileStore) -> None:
    await files.ping()


async def test_directory_store_writes_nothing_outside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = await DirectoryFileStore.open(root)
    hostile = record(path="../../outside.txt", name="../../outside.txt")
    await store.put(hostile, chunks(b"data"))
    written = await asyncio.to_thread(_files_under, tmp_path)
    assert written
    assert all(p.parts[0] == "root" for p in written)


def _files_under(directory: Path) -> set[Path]:
    return {p.relative_to(directory) for p in directory.rglob("*") if p.is_file()}
