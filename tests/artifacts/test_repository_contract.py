"""The artifact-repository contract, run on every implementation: local disk, S3 (moto's server),
GCS (gcp-storage-emulator, see tests/artifacts/stores.py for what it is and is not), FTP and FTPS
(pyftpdlib), SFTP (OpenSSH's sshd), Azure Blob (Azurite): see conftest.STORES."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tracking_core.artifacts.filetrees import FileTreeRepository
from tracking_core.artifacts.local import TEMP_PREFIX, LocalRepository
from tracking_core.artifacts.repository import (
    ArtifactNotFound,
    ArtifactRepository,
    Entry,
    IsADirectory,
    NotSupported,
    Stat,
)
from tracking_core.artifacts.s3 import S3Repository

MiB = 1024 * 1024


async def stream(data: bytes, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


async def failing(data: bytes, after: int) -> AsyncIterator[bytes]:
    """A body that breaks after `after` bytes, like a client that disconnects."""
    async for piece in stream(data[:after]):
        yield piece
    raise ConnectionResetError("client went away")


async def read_all(
    repo: ArtifactRepository, path: str, start: int | None = None, end: int | None = None
) -> bytes:
    download = await repo.download(path, start, end)
    out = bytearray()
    async for chunk in download.chunks:
        out += chunk
    return bytes(out)


def payload(size: int) -> bytes:
    # Not repetitive, so a misplaced chunk changes the digest.
    return b"".join(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range((size + 31) // 32))[:size]


async def test_small_roundtrip_and_stat(repo: ArtifactRepository) -> None:
    assert await repo.upload("hello.txt", stream(b"hello"), "text/plain") == 5
    assert await read_all(repo, "hello.txt") == b"hello"
    assert await repo.stat("hello.txt") == Stat(is_dir=False, size=5)
    assert await repo.stat("missing.txt") is None


async def test_empty_file(repo: ArtifactRepository) -> None:
    assert await repo.upload("empty.bin", stream(b"")) == 0
    assert await repo.stat("empty.bin") == Stat(is_dir=False, size=0)
    assert await read_all(repo, "empty.bin") == b""


async def test_large_file_crosses_part_boundaries(repo: ArtifactRepository) -> None:
    data = payload(20 * MiB + 12345)  # several S3 parts / GCS chunks, with a ragged tail
    assert await repo.upload("big/model.bin", stream(data, chunk=MiB)) == len(data)
    got = await read_all(repo, "big/model.bin")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    download = await repo.download("big/model.bin")
    assert download.size == len(data)
    sizes = [len(c) async for c in download.chunks]
    assert max(sizes) <= 2 * MiB, "chunks stay bounded"


async def test_a_producer_may_refill_its_buffer_once_asked_for_more(repo: ArtifactRepository) -> None:
    # As a readinto loop does: a store that keeps a chunk past the next request for one (SFTP's
    # pipelined writes) must have copied it by then.
    data = payload(4 * MiB)

    async def refilled() -> AsyncIterator[bytes]:
        buf = bytearray(MiB)
        for i in range(0, len(data), MiB):
            buf[:] = data[i : i + MiB]
            yield buf  # type: ignore[misc]

    assert await repo.upload("refilled.bin", refilled()) == len(data)
    assert await read_all(repo, "refilled.bin") == data


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (10, 19), (8 * 1024 * 1024 - 3, 8 * 1024 * 1024 + 3), (5, None)],
    ids=["first-byte", "middle", "across-chunk", "open-ended"],
)
async def test_ranges(repo: ArtifactRepository, start: int, end: int | None) -> None:
    data = payload(9 * MiB)
    await repo.upload("r.bin", stream(data, chunk=MiB))
    download = await repo.download("r.bin", start, end)
    last = len(data) - 1 if end is None else end
    assert (download.size, download.start, download.end) == (len(data), start, last)
    got = b"".join([c async for c in download.chunks])
    assert got == data[start : last + 1]


async def test_overwrite_replaces(repo: ArtifactRepository) -> None:
    await repo.upload("a.txt", stream(b"first version"))
    await repo.upload("a.txt", stream(b"v2"))
    assert await read_all(repo, "a.txt") == b"v2"


async def test_list_one_level_with_basenames(repo: ArtifactRepository) -> None:
    for path, body in [("root.txt", b"1"), ("dir/a.txt", b"22"), ("dir/sub/b.txt", b"333"), ("dir2/c", b"")]:
        await repo.upload(path, stream(body))
    assert await repo.list_dir("") == [Entry("dir", True), Entry("dir2", True), Entry("root.txt", False, 1)]
    assert await repo.list_dir("dir") == [Entry("a.txt", False, 2), Entry("sub", True)]
    assert await repo.list_dir("dir/sub") == [Entry("b.txt", False, 3)]
    assert await repo.list_dir("dir/a.txt") is None, "a file is not a directory"
    assert await repo.list_dir("nope") is None
    assert await repo.stat("dir") == Stat(is_dir=True)


async def test_delete_file_and_tree_but_not_siblings(repo: ArtifactRepository) -> None:
    for path in [
        "run/artifacts/x.txt",
        "run/artifacts/deep/y.txt",
        "run/artifacts2/keep.txt",
        "run/keep.txt",
    ]:
        await repo.upload(path, stream(b"data"))
    await repo.delete("run/artifacts")
    assert await repo.stat("run/artifacts") is None
    assert await repo.stat("run/artifacts/deep/y.txt") is None
    # A shared name prefix is not a shared directory.
    assert await repo.stat("run/artifacts2/keep.txt") == Stat(is_dir=False, size=4)
    await repo.delete("run/keep.txt")
    assert await repo.list_dir("run") == [Entry("artifacts2", True)]
    await repo.delete("never/existed")  # no error


async def test_download_missing_and_directory(repo: ArtifactRepository) -> None:
    await repo.upload("d/f.txt", stream(b"x"))
    with pytest.raises(ArtifactNotFound):
        await repo.download("nope.txt")
    with pytest.raises((ArtifactNotFound, IsADirectory)):
        await read_all(repo, "d")


@pytest.mark.parametrize("size", [3 * MiB, 20 * MiB], ids=["single-part", "multipart"])
async def test_interrupted_upload_leaves_nothing(repo: ArtifactRepository, size: int) -> None:
    data = payload(size)
    await repo.upload("keep/old.bin", stream(b"previous"))
    for path in ["fresh.bin", "keep/old.bin"]:
        with pytest.raises(ConnectionResetError):
            await repo.upload(path, failing(data, after=size - MiB))
    assert await repo.stat("fresh.bin") is None
    assert await read_all(repo, "keep/old.bin") == b"previous"
    assert await repo.list_dir("") == [Entry("keep", True)]
    if isinstance(repo, LocalRepository):
        leftovers = [n for _, _, files in os.walk(repo.root) for n in files if n.startswith(TEMP_PREFIX)]
        assert leftovers == []
    if isinstance(repo, FileTreeRepository):
        assert await remote_leftovers(repo, repo.root) == []
    if isinstance(repo, S3Repository):
        uploads = await repo.client.list_multipart_uploads(Bucket=repo.bucket, Prefix=repo.prefix)
        assert uploads.get("Uploads", []) == [], "aborted, not left to accumulate"


async def remote_leftovers(repo: FileTreeRepository, directory: str) -> list[str]:
    """Temporary upload names anywhere under `directory`, seen through the store's own listing."""
    async with repo.session() as s:
        entries = await s.listdir(directory)
    found = [f"{directory}/{e.name}" for e in entries if e.name.startswith(TEMP_PREFIX)]
    for e in entries:
        if e.is_dir:
            found += await remote_leftovers(repo, f"{directory}/{e.name}")
    return found


async def test_multipart_with_presigned_parts(repo: ArtifactRepository) -> None:
    part1, part2 = payload(5 * MiB), b"tail bytes"
    if not repo.capabilities.multipart_upload:
        with pytest.raises(NotSupported):
            await repo.create_multipart("mpu.bin", 2)
        return
    mpu = await repo.create_multipart("mpu.bin", 2)
    assert [c.part_number for c in mpu.credentials] == [1, 2]
    etags = []
    async with aiohttp.ClientSession() as http:
        for cred, body in zip(mpu.credentials, [part1, part2], strict=True):
            async with http.put(cred.url, data=body, headers=cred.headers) as r:
                assert r.status == 200, await r.text()
                etags.append((cred.part_number, r.headers["ETag"]))
    assert await repo.stat("mpu.bin") is None, "invisible until completed"
    await repo.complete_multipart("mpu.bin", mpu.upload_id, etags)
    assert await read_all(repo, "mpu.bin") == part1 + part2

    aborted = await repo.create_multipart("aborted.bin", 1)
    await repo.abort_multipart("aborted.bin", aborted.upload_id)
    assert await repo.stat("aborted.bin") is None


async def test_presigned_download(repo: ArtifactRepository) -> None:
    await repo.upload("p.txt", stream(b"presigned body"))
    if not repo.capabilities.presigned_download:
        with pytest.raises(NotSupported):
            await repo.presign_download("p.txt", 60)
        return
    presigned = await repo.presign_download("p.txt", 60)
    assert presigned.size == len(b"presigned body")
    async with aiohttp.ClientSession() as http, http.get(presigned.url, headers={"Range": "bytes=0-8"}) as r:
        assert await r.read() == b"presigned"
    with pytest.raises(ArtifactNotFound):
        await repo.presign_download("missing.txt", 60)
