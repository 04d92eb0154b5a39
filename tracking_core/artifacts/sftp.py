"""Artifacts on an SSH server: `sftp://[user[:password]@]host[:port]/path` (MLflow's form; the
path is absolute on the server), through asyncssh.

Authentication and host checking come from the server process's own ~/.ssh, as with OpenSSH and
MLflow's SFTP repository: ~/.ssh/config (Host aliases, User, Port, IdentityFile), the default
private keys and the SSH agent, or the password in the URI. Host keys are checked against
~/.ssh/known_hosts, always: an unknown host is refused, not trusted on first use. Ciphers are
trackgate's own preference (AES-GCM first), not ~/.ssh/config's.

One SSH connection per (host, port, user) is shared by every request (SFTP multiplexes requests
on one channel); it is reopened when it drops. Uploads are written to a temporary name and
moved over the target with OpenSSH's posix-rename, see filetrees.py.

Bytes move in SFTP requests of the server's largest size (its limits@openssh.com answer, 255 KiB
for OpenSSH), up to IN_FLIGHT of them outstanding at once in each direction, as OpenSSH's `sftp`
pipelines its own: a file is one stream of requests rather than one round trip per chunk.
Requests are made one by one (files opened with block_size=0): asyncssh's own parallel reader
would reassemble each chunk into a fresh buffer, two copies per byte.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import stat as st
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import unquote, urlparse

from tracking_core.artifacts.filetrees import FileSession, FileTreeRepository, StoreUnavailable
from tracking_core.artifacts.repository import (
    ArtifactRepository,
    Backend,
    Entry,
    Registry,
    Stat,
)
from tracking_core.errors import invalid

Target = tuple[str, int | None, str | None, str | None]  # host, port, user, password
ENCRYPTION_PREFERENCE = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
IN_FLIGHT = 16  # requests outstanding per transfer: 16 x 255 KiB, about 4 MiB of memory
WINDOW = 8 * 1024 * 1024  # the SSH channel's receive window: room for every request in flight


def _stat(attrs: Any) -> Stat:
    if attrs.permissions is not None and st.S_ISDIR(attrs.permissions):
        return Stat(is_dir=True)
    return Stat(is_dir=False, size=attrs.size or 0)


def _limit(sftp: Any, name: str) -> int:
    """The server's largest read or write request (limits@openssh.com), else SFTP's safe 16 KiB."""
    return getattr(getattr(sftp, "limits", None), name, 0) or 16 * 1024


class SftpSession(FileSession):
    def __init__(self, sftp: Any) -> None:
        self.sftp = sftp

    async def stat(self, path: str) -> Stat | None:
        import asyncssh

        try:
            return _stat(await self.sftp.stat(path))
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath, asyncssh.SFTPNotADirectory):
            return None

    async def listdir(self, path: str) -> list[Entry]:
        entries = []
        for name in await self.sftp.readdir(path):
            if name.filename in (".", ".."):
                continue
            found = _stat(name.attrs)
            entries.append(Entry(name.filename, found.is_dir, found.size))
        return entries

    async def mkdir(self, path: str) -> None:
        import asyncssh

        try:
            await self.sftp.mkdir(path)
        except (asyncssh.SFTPFileAlreadyExists, asyncssh.SFTPFailure):
            # OpenSSH answers plain FAILURE for "exists"; made by a concurrent upload: fine.
            if not await self.sftp.isdir(path):
                raise

    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        block = _limit(self.sftp, "max_write_len")
        size = 0
        pending: collections.deque[asyncio.Future[None]] = collections.deque()
        async with self.sftp.open(path, "wb", block_size=0) as f:
            try:
                async for chunk in chunks:
                    view = memoryview(chunk)
                    for at in range(0, len(view), block):
                        while len(pending) >= IN_FLIGHT:
                            await pending.popleft()
                        piece = view[at : at + block]
                        pending.append(asyncio.ensure_future(f.write(piece, size)))
                        size += len(piece)
                    # Pieces are views, not copies: every request started above builds its packet
                    # (copying its piece) in its first step, which this lets run before the
                    # producer is asked for more and might reuse its buffer.
                    await asyncio.sleep(0)
                while pending:
                    await pending.popleft()
            finally:
                for waiting in pending:
                    waiting.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        return size

    async def replace(self, source: str, target: str) -> None:
        import asyncssh

        try:
            await self.sftp.posix_rename(source, target)
            return
        except asyncssh.SFTPOpUnsupported:
            pass
        # A server without OpenSSH's extension: plain SFTP v3 rename refuses an existing target.
        await self.remove_file(target)
        await self.sftp.rename(source, target)

    async def read(self, path: str, start: int, length: int) -> AsyncIterator[bytes]:
        block = _limit(self.sftp, "max_read_len")
        pending: collections.deque[tuple[int, int, asyncio.Future[bytes]]] = collections.deque()
        async with self.sftp.open(path, "rb", block_size=0) as f:
            offset, end = start, start + length
            try:
                while offset < end or pending:
                    while offset < end and len(pending) < IN_FLIGHT:
                        n = min(block, end - offset)
                        pending.append((offset, n, asyncio.ensure_future(f.read(n, offset))))
                        offset += n
                    at, wanted, waiting = pending.popleft()
                    data = await waiting
                    while True:
                        if not data:
                            # The file shrank since its size was read. Never a short file that
                            # looks complete: the response announced its length.
                            raise ConnectionResetError(f"{path} ended {end - at} bytes early")
                        yield data
                        if len(data) >= wanted:
                            break
                        # A short answer (a server with a smaller limit): read the rest in place.
                        at, wanted = at + len(data), wanted - len(data)
                        data = await f.read(wanted, at)
            finally:
                for _, _, waiting in pending:
                    waiting.cancel()
                await asyncio.gather(*(w for _, _, w in pending), return_exceptions=True)

    async def remove_file(self, path: str) -> None:
        import asyncssh

        with contextlib.suppress(asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            await self.sftp.remove(path)

    async def remove_dir(self, path: str) -> None:
        await self.sftp.rmdir(path)


class SftpRepository(FileTreeRepository):
    def __init__(self, backend: SftpBackend, target: Target, root: str) -> None:
        super().__init__(root)
        self.backend = backend
        self.target = target

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[FileSession]:
        yield SftpSession(await self.backend.sftp(self.target))


class SftpBackend(Backend):
    def __init__(self) -> None:
        self._clients: dict[Target, tuple[Any, Any]] = {}
        self._lock = asyncio.Lock()

    async def sftp(self, target: Target) -> Any:
        """The SFTP client of the shared connection to `target`, opened on first use."""
        found = self._clients.get(target)
        if found is not None:
            return found[1]
        async with self._lock:
            found = self._clients.get(target)
            if found is None:
                found = await self._connect(target)
                self._clients[target] = found
        return found[1]

    async def _connect(self, target: Target) -> tuple[Any, Any]:
        import asyncssh

        host, port, user, password = target
        options: dict[str, Any] = {
            "connect_timeout": 30,
            "keepalive_interval": 30,
            # AES-GCM first (AES-NI through OpenSSL): asyncssh's chacha20-poly1305, its default
            # first choice, wrote at about half the speed here. Servers lacking it negotiate on.
            "encryption_algs": ENCRYPTION_PREFERENCE,
            "window": WINDOW,
        }
        if port is not None:
            options["port"] = port
        if user is not None:
            options["username"] = user
        if password is not None:
            options["password"] = password
        # known_hosts, client keys, agent and ~/.ssh/config are asyncssh's defaults, as for `ssh`.
        try:
            conn = await asyncssh.connect(host, **options)
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            # Also a host key missing from known_hosts, or a key the server refuses.
            raise StoreUnavailable("SFTP", f"{host}:{port or 22}", exc) from None
        try:
            sftp = await conn.start_sftp_client()
        except BaseException:
            conn.close()
            raise
        watcher = asyncio.ensure_future(conn.wait_closed())
        watcher.add_done_callback(lambda _: self._forget(target, conn))
        return conn, sftp

    def _forget(self, target: Target, conn: Any) -> None:
        found = self._clients.get(target)
        if found is not None and found[0] is conn:
            del self._clients[target]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for conn, sftp in clients:
            sftp.exit()
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()

    def repository(self, uri: str) -> ArtifactRepository:
        parsed = urlparse(uri)
        if not parsed.hostname:
            raise invalid("SFTP artifact locations name a host: sftp://[user@]host[:port]/path.")
        target: Target = (
            parsed.hostname,
            parsed.port,
            unquote(parsed.username) if parsed.username else None,
            unquote(parsed.password) if parsed.password is not None else None,
        )
        return SftpRepository(self, target, unquote(parsed.path))


def register(registry: Registry) -> None:
    registry.register("sftp", SftpBackend)
