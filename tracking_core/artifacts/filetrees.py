"""What the remote-filesystem repositories (FTP, SFTP, WebHDFS) share.

These stores have real directories and a rename, but no multipart objects: an upload is written
to a hidden temporary file beside its target (local.TEMP_PREFIX, so listings hide it and `gc`
may sweep it) and renamed over the target only when the whole body has arrived. A store talks
through a *session* (an FTP login, an SFTP channel, an HTTP session) that offers a handful of
file primitives; this module turns them into the repository contract.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import posixpath
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager

from tracking_core.artifacts import paths
from tracking_core.artifacts.local import TEMP_PREFIX
from tracking_core.artifacts.repository import (
    ArtifactNotFound,
    ArtifactRepository,
    Download,
    Entry,
    IsADirectory,
    Stat,
)
from tracking_core.errors import ErrorCode, MlflowError, invalid


class FileSession(abc.ABC):
    """File primitives on absolute remote paths. Missing paths are None / no-ops, never errors."""

    @abc.abstractmethod
    async def stat(self, path: str) -> Stat | None: ...

    @abc.abstractmethod
    async def listdir(self, path: str) -> list[Entry]:
        """Every child of the directory `path` (temporary names included)."""

    @abc.abstractmethod
    async def mkdir(self, path: str) -> None:
        """Create the directory `path`, whose parent exists; one that already exists is fine."""

    async def makedirs(self, path: str) -> None:
        """Create `path` and its parents; raise ParentIsFile if something in the way is a file."""
        found = await self.stat(path)
        if found is not None:
            if not found.is_dir:
                raise ParentIsFile(path)
            return
        parent = posixpath.dirname(path)
        if parent != path:
            await self.makedirs(parent)
        await self.mkdir(path)

    @abc.abstractmethod
    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        """Write the stream to a new file `path`; return its size."""

    @abc.abstractmethod
    async def replace(self, source: str, target: str) -> None:
        """Rename `source` to `target`, replacing `target` if it exists."""

    @abc.abstractmethod
    def read(self, path: str, start: int, length: int) -> AsyncIterator[bytes]:
        """`length` bytes from offset `start`, in pieces of at most CHUNK_SIZE."""

    @abc.abstractmethod
    async def remove_file(self, path: str) -> None: ...

    @abc.abstractmethod
    async def remove_dir(self, path: str) -> None:
        """Remove the empty directory `path`."""


class ParentIsFile(Exception):
    """makedirs met a file where a directory had to be."""


class StoreUnavailable(MlflowError):
    """The store could not be reached (503, which the mlflow client retries), or refused the
    session: login, host key (500: retrying a deterministic refusal only delays the error).

    The message names the store's address only: answers and logs must not carry the
    credentials a location may hold.
    """

    def __init__(self, store: str, address: str, reason: BaseException) -> None:
        unreachable = isinstance(reason, OSError | TimeoutError)
        super().__init__(
            ErrorCode.TEMPORARILY_UNAVAILABLE if unreachable else ErrorCode.INTERNAL_ERROR,
            f"The {store} artifact store at {address} "
            f"{'is unreachable' if unreachable else 'refused the session'} ({type(reason).__name__}).",
        )


class FileTreeRepository(ArtifactRepository):
    """A repository rooted at the absolute directory `root` of a remote filesystem."""

    def __init__(self, root: str) -> None:
        self.root = "/" + root.strip("/")

    @abc.abstractmethod
    def session(self) -> AbstractAsyncContextManager[FileSession]:
        """A session to the store, released when the block ends."""

    def remote(self, path: str) -> str:
        return posixpath.join(self.root, path) if path else self.root

    async def upload(self, path: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        if not path:
            raise invalid(paths.INVALID_PATH)
        target = self.remote(path)
        parent = posixpath.dirname(target)
        temp = posixpath.join(parent, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        async with self.session() as s:
            found = await s.stat(target)
            if found is not None and found.is_dir:
                raise IsADirectory(path)
            try:
                await s.makedirs(parent)
            except ParentIsFile:
                raise invalid(f"Cannot write '{path}': a parent of it is a file.") from None
            try:
                size = await s.write(temp, chunks)
                await s.replace(temp, target)
            except BaseException:
                # Shielded and on a fresh session: the handler may be being cancelled, and the
                # broken transfer may have left this session's connection unusable.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._discard(temp))
                raise
        return size

    async def _discard(self, temp: str) -> None:
        async with self.session() as s:
            await s.remove_file(temp)

    async def download(self, path: str, start: int | None = None, end: int | None = None) -> Download:
        target = self.remote(path)
        async with self.session() as s:
            found = await s.stat(target)
        if found is None:
            raise ArtifactNotFound(path)
        if found.is_dir:
            raise IsADirectory(path)
        size = found.size or 0
        first = start or 0
        last = size - 1 if end is None else min(end, size - 1)
        return Download(size=size, start=first, end=last, chunks=self._read(target, first, last - first + 1))

    async def _read(self, target: str, start: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        async with self.session() as s:
            async for chunk in s.read(target, start, length):
                yield chunk

    async def list_dir(self, path: str) -> list[Entry] | None:
        target = self.remote(path)
        async with self.session() as s:
            found = await s.stat(target)
            if found is None or not found.is_dir:
                return None
            entries = await s.listdir(target)
        return sorted((e for e in entries if not e.name.startswith(TEMP_PREFIX)), key=lambda e: e.name)

    async def stat(self, path: str) -> Stat | None:
        async with self.session() as s:
            return await s.stat(self.remote(path))

    async def delete(self, path: str) -> None:
        target = self.remote(path)
        async with self.session() as s:
            found = await s.stat(target)
            if found is None:
                return
            if found.is_dir:
                await _remove_tree(s, target)
            else:
                await s.remove_file(target)


async def _remove_tree(s: FileSession, directory: str) -> None:
    for entry in await s.listdir(directory):
        child = posixpath.join(directory, entry.name)
        if entry.is_dir:
            await _remove_tree(s, child)
        else:
            await s.remove_file(child)
    await s.remove_dir(directory)
