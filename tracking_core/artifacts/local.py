"""Artifacts on a local (or mounted) filesystem: plain paths and file:// URIs.

Blocking file calls run in the default thread pool, one chunk at a time, so the event loop keeps
serving other requests while a 10 GB file moves. An upload is written to a hidden temporary
file beside its target and renamed over it only when the whole body has arrived, so readers
never see a half-written file and an interrupted upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from tracking_core.artifacts import paths
from tracking_core.artifacts.repository import (
    CHUNK_SIZE,
    ArtifactNotFound,
    ArtifactRepository,
    Backend,
    Download,
    Entry,
    IsADirectory,
    Registry,
    Stat,
)
from tracking_core.errors import invalid

# Temporary uploads carry this prefix; listings hide them and `gc` may sweep stale ones.
TEMP_PREFIX = ".trackgate-upload-"


def local_path(uri: str) -> Path:
    """The absolute directory a plain path or file: URI names."""
    if uri.lower().startswith("file:"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise invalid(f"file: URIs must name a local path, not host {parsed.netloc!r}.")
        return Path(os.path.abspath(unquote(parsed.path)))
    return Path(os.path.abspath(uri))


class LocalRepository(ArtifactRepository):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        return paths.confine(self.root, path) if self.root.exists() else self.root / path

    async def upload(self, path: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        if not path:
            raise invalid(paths.INVALID_PATH)
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        target = self._path(path)
        try:
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise invalid(f"Cannot write '{path}': a parent of it is a file.") from None
        if target.is_dir():
            raise IsADirectory(path)
        temp = target.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        size = 0
        f = await asyncio.to_thread(open, temp, "wb")
        try:
            async for chunk in chunks:
                await asyncio.to_thread(f.write, chunk)
                size += len(chunk)
            await asyncio.to_thread(f.close)
            # Checked again: a symlink could have been planted in the parent since the first check.
            paths.confine(self.root, paths.parent(path))
            await asyncio.to_thread(os.replace, temp, target)
        except BaseException:
            # BaseException: a cancelled handler (client gone) must clean up too.
            f.close()
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return size

    async def download(self, path: str, start: int | None = None, end: int | None = None) -> Download:
        target = self._path(path)
        try:
            f = await asyncio.to_thread(open, target, "rb")
        except FileNotFoundError:
            raise ArtifactNotFound(path) from None
        except (IsADirectoryError, PermissionError):
            if target.is_dir():
                raise IsADirectory(path) from None
            raise
        size = os.fstat(f.fileno()).st_size
        first = start or 0
        last = size - 1 if end is None else min(end, size - 1)
        return Download(size=size, start=first, end=last, chunks=_read(f, first, last))

    async def list_dir(self, path: str) -> list[Entry] | None:
        target = self._path(path)
        return await asyncio.to_thread(_scan, target)

    async def stat(self, path: str) -> Stat | None:
        target = self._path(path)
        try:
            st = await asyncio.to_thread(os.stat, target)
        except (FileNotFoundError, NotADirectoryError):
            return None
        is_dir = os.path.isdir(target)
        return Stat(is_dir=is_dir, size=None if is_dir else st.st_size)

    async def delete(self, path: str) -> None:
        target = self._path(path)
        if target.is_dir() and not target.is_symlink():
            await asyncio.to_thread(shutil.rmtree, target, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(target.unlink)


async def _read(f: object, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes start..end of an open file, CHUNK_SIZE at a time; closes the file however it ends."""
    try:
        await asyncio.to_thread(f.seek, start)  # type: ignore[attr-defined]
        remaining = end - start + 1
        while remaining > 0:
            chunk = await asyncio.to_thread(f.read, min(CHUNK_SIZE, remaining))  # type: ignore[attr-defined]
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        f.close()  # type: ignore[attr-defined]


def _scan(target: Path) -> list[Entry] | None:
    try:
        with os.scandir(target) as it:
            entries = []
            for e in it:
                if e.name.startswith(TEMP_PREFIX):
                    continue
                is_dir = e.is_dir(follow_symlinks=False)
                entries.append(
                    Entry(e.name, is_dir, None if is_dir else e.stat(follow_symlinks=False).st_size)
                )
    except (FileNotFoundError, NotADirectoryError):
        return None
    return sorted(entries, key=lambda e: e.name)


class LocalBackend(Backend):
    def repository(self, uri: str) -> ArtifactRepository:
        return LocalRepository(local_path(uri))


def register(registry: Registry) -> None:
    registry.register("", LocalBackend)
    registry.register("file", LocalBackend)
