"""Artifacts on an FTP server: `ftp://user:password@host[:port]/path` (MLflow's form) and
`ftps://…` for explicit FTPS (AUTH TLS; the certificate is checked against the system CAs, or
SSL_CERT_FILE). The path is absolute on the server, as MLflow's FTP repository reads it.

One FTP login per operation (FTP is one transfer per control connection, so concurrent requests
cannot share one); passive mode (EPSV, then PASV). Uploads are written to a temporary name and
renamed over the target (RNFR/RNTO), see filetrees.py. Downloads are received straight into
CHUNK_SIZE buffers (_Receiver), not through aioftp's stream, whose 64 KiB reader and per-read
timeout task cost more CPU than the bytes themselves on a fast link.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import unquote, urlparse

from tracking_core.artifacts.filetrees import FileSession, FileTreeRepository, StoreUnavailable
from tracking_core.artifacts.repository import (
    CHUNK_SIZE,
    ArtifactRepository,
    Backend,
    Entry,
    Registry,
    Stat,
)
from tracking_core.errors import invalid

DIR_TYPES = ("dir", "cdir", "pdir")
IDLE_TIMEOUT = 300.0  # a data connection that sends nothing for this long is given up
# Full buffers a download may hold before it stops reading the data connection. With 2, reading
# paused whenever the link to the gateway was a frame behind, and the server's next sendfile waited
# for the pause to end: 512 MiB came down at ~670 MB/s; with 4 (or 8, or 16), ~910 MB/s.
READ_AHEAD = 4


def _missing(exc: Exception) -> bool:
    """A 55x answer: no such file or directory (or not accessible), as opposed to a broken link."""
    codes = getattr(exc, "received_codes", ())
    return bool(codes) and str(codes[-1]).startswith("55")


class _Receiver(asyncio.BufferedProtocol):
    """The bytes of one data connection, received into buffers of CHUNK_SIZE (or what is left of
    `length`) that are handed to the reader whole: no copy between the socket and the response.
    Reading pauses while READ_AHEAD buffers wait, and stops once `length` bytes have arrived."""

    def __init__(self, transport: asyncio.BaseTransport, length: int) -> None:
        self.transport: Any = transport
        self.left = length
        self.ready: collections.deque[bytearray] = collections.deque()
        self.buffer: bytearray | None = None
        self.filled = 0
        self.ended = False
        self.error: BaseException | None = None
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.buffer is None:
            self.buffer, self.filled = bytearray(min(CHUNK_SIZE, self.left)), 0
        return memoryview(self.buffer)[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        assert self.buffer is not None
        self.filled += nbytes
        if self.filled < len(self.buffer):
            return
        self.ready.append(self.buffer)
        self.left -= self.filled
        self.buffer = None
        if self.left <= 0:
            self.ended = True
        if self.ended or len(self.ready) >= READ_AHEAD:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._end(None)
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        if not self.ended:
            if self.buffer is not None and self.filled:
                self.ready.append(self.buffer[: self.filled])
                self.left -= self.filled
            if exc is None and self.left > 0:
                # Never a short file that looks complete: the response announced its length.
                exc = ConnectionResetError(f"the FTP data connection ended {self.left} bytes early")
            self.ended, self.error = True, exc
        self.buffer = None
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self.ready:
                block = self.ready.popleft()
                if self.paused and not self.ended:
                    self.paused = False
                    self.transport.resume_reading()
                yield block  # type: ignore[misc]  # a bytearray, handed over
            elif self.ended:
                if self.error is not None:
                    raise self.error
                return
            else:
                self.waiter = asyncio.get_running_loop().create_future()
                async with asyncio.timeout(IDLE_TIMEOUT):
                    await self.waiter


class FtpSession(FileSession):
    def __init__(self, client: Any) -> None:
        self.client = client

    async def stat(self, path: str) -> Stat | None:
        import aioftp

        try:
            info = await self.client.stat(path)
        except aioftp.StatusCodeError as exc:
            if _missing(exc):
                return None
            raise
        if info["type"] in DIR_TYPES:
            return Stat(is_dir=True)
        return Stat(is_dir=False, size=int(info.get("size", 0)))

    async def listdir(self, path: str) -> list[Entry]:
        entries = []
        for child, info in await self.client.list(path):
            if info["type"] in DIR_TYPES:
                if info["type"] == "dir":  # cdir/pdir are "." and ".." in MLSD
                    entries.append(Entry(child.name, True))
            else:
                entries.append(Entry(child.name, False, int(info.get("size", 0))))
        return entries

    async def mkdir(self, path: str) -> None:
        import aioftp

        try:
            await self.client.command("MKD " + path, "257")
        except aioftp.StatusCodeError:
            if not await self.client.is_dir(path):  # made by a concurrent upload: fine
                raise

    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        size = 0
        async with self.client.upload_stream(path) as stream:
            async for chunk in chunks:
                await stream.write(chunk)
                size += len(chunk)
        return size

    async def replace(self, source: str, target: str) -> None:
        import aioftp

        try:
            await self.client.rename(source, target)
        except aioftp.StatusCodeError:
            # Servers that refuse to rename over a file (unlike pyftpdlib, vsftpd, ProFTPD,
            # which use rename(2)): a short window where the old content is gone is the best
            # FTP allows.
            await self.remove_file(target)
            await self.client.rename(source, target)

    async def read(self, path: str, start: int, length: int) -> AsyncIterator[bytes]:
        # aioftp's get_stream, with the data connection's protocol swapped before RETR: no byte
        # has arrived yet, and every byte then lands in _Receiver's buffers.
        _, writer = await self.client.get_passive_connection("I")
        receiver = _Receiver(writer.transport, length)
        writer.transport.set_protocol(receiver)
        try:
            if start:
                await self.client.command("REST " + str(start), "350")
            await self.client.command("RETR " + path, "1xx")
            async for block in receiver.chunks():
                yield block
        finally:
            # Closing the data connection ends a ranged read early; the control connection
            # is closed with the session, so no ABOR dance is needed.
            writer.close()

    async def remove_file(self, path: str) -> None:
        import aioftp

        try:
            await self.client.remove_file(path)
        except aioftp.StatusCodeError as exc:
            if not _missing(exc):
                raise

    async def remove_dir(self, path: str) -> None:
        await self.client.remove_directory(path)


class FtpRepository(FileTreeRepository):
    def __init__(self, backend: FtpBackend, host: str, port: int, user: str, password: str, tls: bool, root: str):
        super().__init__(root)
        self.backend = backend
        self.host, self.port, self.user, self.password, self.tls = host, port, user, password, tls

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[FileSession]:
        import aioftp

        client = aioftp.Client(socket_timeout=300, connection_timeout=30, path_timeout=30, encoding="utf-8")
        try:
            try:
                await client.connect(self.host, self.port)
                if self.tls:
                    await client.upgrade_to_tls(self.backend.tls_context)
                await client.login(self.user, self.password)
            except (TimeoutError, OSError, aioftp.StatusCodeError) as exc:
                raise StoreUnavailable("FTP", f"{self.host}:{self.port}", exc) from None
            yield FtpSession(client)
        finally:
            client.close()


class FtpBackend(Backend):
    def __init__(self) -> None:
        self.tls_context = ssl.create_default_context()

    def repository(self, uri: str) -> ArtifactRepository:
        parsed = urlparse(uri)
        if not parsed.hostname:
            raise invalid(f"FTP artifact location {_redacted(uri)!r} names no host.")
        return FtpRepository(
            self,
            parsed.hostname,
            parsed.port or 21,
            unquote(parsed.username or "anonymous"),
            unquote(parsed.password or ""),
            parsed.scheme.lower() == "ftps",
            unquote(parsed.path),
        )


def _redacted(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    return parsed._replace(netloc=parsed.netloc.replace(":" + parsed.password + "@", ":***@")).geturl()


def register(registry: Registry) -> None:
    registry.register("ftp", FtpBackend)
    registry.register("ftps", FtpBackend)
