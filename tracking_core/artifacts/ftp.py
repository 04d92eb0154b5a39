"""Artifacts on an FTP server: `ftp://user:password@host[:port]/path` (MLflow's form) and
`ftps://…` for explicit FTPS (AUTH TLS; the certificate is checked against the system CAs, or
SSL_CERT_FILE). The path is absolute on the server, as MLflow's FTP repository reads it.

One FTP login per operation (FTP is one transfer per control connection, so concurrent requests
cannot share one); passive mode (EPSV, then PASV). Uploads are written to a temporary name and
renamed over the target (RNFR/RNTO), see filetrees.py.
"""

from __future__ import annotations

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


def _missing(exc: Exception) -> bool:
    """A 55x answer: no such file or directory (or not accessible), as opposed to a broken link."""
    codes = getattr(exc, "received_codes", ())
    return bool(codes) and str(codes[-1]).startswith("55")


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
        stream = await self.client.download_stream(path, offset=start)
        remaining = length
        try:
            while remaining > 0:
                block = await stream.read(min(CHUNK_SIZE, remaining))
                if not block:
                    break
                remaining -= len(block)
                yield block
        finally:
            # Closing the data connection ends a ranged read early; the control connection
            # is closed with the session, so no ABOR dance is needed.
            stream.close()

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
