"""Artifacts in HDFS through WebHDFS, Hadoop's HTTP API (no Java, no libhdfs): `hdfs://namenode[:port]/path`,
`webhdfs://namenode:http-port/path` and `swebhdfs://…` (HTTPS), as Hadoop itself spells them.

Where the HTTP API is: webhdfs:// and swebhdfs:// name it directly. For hdfs:// (whose port is
the RPC port, 8020) it is WEBHDFS_URL when set (e.g. `http://namenode:9870`, or an HttpFS or Knox
address), else the URI's host on 9870, Hadoop 3's default. The user is the URI's (`hdfs://alice@nn/`),
else HADOOP_USER_NAME, sent as `user.name` (Hadoop's "simple" authentication). Kerberos (SPNEGO)
is not implemented: a secured cluster needs a gateway in front (Knox, HttpFS with a proxy user)
or a delegation token in WEBHDFS_DELEGATION_TOKEN.

Writes follow the two-step CREATE (the namenode redirects to a datanode) to a temporary name,
then RENAME with `renameoptions=OVERWRITE`, which HDFS applies atomically; see filetrees.py.

Not tested against a real cluster: this machine has no Hadoop, and no real WebHDFS server is
packaged for PyPI, npm or Debian (see README, "Artifact stores"). What is tested: the address
and user mapping, a refused location, an unreachable endpoint (503, retried by clients) and an
HTTP endpoint that is not WebHDFS (a pointed 500), tests/artifacts/test_hdfs_endpoint.py.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import quote, unquote, urlparse

import aiohttp

from tracking_core.artifacts.filetrees import FileSession, FileTreeRepository, ParentIsFile, StoreUnavailable
from tracking_core.artifacts.repository import (
    CHUNK_SIZE,
    ArtifactRepository,
    Backend,
    Entry,
    Registry,
    Stat,
)
from tracking_core.errors import ErrorCode, MlflowError, invalid

DEFAULT_HTTP_PORT = 9870
PREFIX = "/webhdfs/v1"


class WebHdfsError(Exception):
    """A RemoteException answered by the namenode or a datanode."""

    def __init__(self, status: int, exception: str, message: str) -> None:
        super().__init__(f"WebHDFS {status} {exception}: {message}")
        self.status, self.exception = status, exception


def endpoint(uri: str, env: dict[str, str] | os._Environ[str] = os.environ) -> tuple[str, str | None, str]:
    """(WebHDFS base URL, user, absolute path) of an hdfs/webhdfs/swebhdfs URI."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if not parsed.hostname and not (scheme == "hdfs" and env.get("WEBHDFS_URL")):
        raise invalid("HDFS artifact locations name the namenode: hdfs://namenode[:port]/path.")
    if scheme == "hdfs":
        base = env.get("WEBHDFS_URL") or f"http://{parsed.hostname}:{DEFAULT_HTTP_PORT}"
    else:
        http = "https" if scheme == "swebhdfs" else "http"
        base = f"{http}://{parsed.hostname}:{parsed.port or DEFAULT_HTTP_PORT}"
    user = unquote(parsed.username) if parsed.username else env.get("HADOOP_USER_NAME")
    return base.rstrip("/"), user, unquote(parsed.path) or "/"


class WebHdfsSession(FileSession):
    def __init__(self, http: aiohttp.ClientSession, base: str, auth: dict[str, str]) -> None:
        self.http, self.base, self.auth = http, base, auth

    def _url(self, path: str) -> str:
        return self.base + PREFIX + quote(path)

    def _params(self, op: str, **extra: Any) -> dict[str, str]:
        return {"op": op, **self.auth, **{k: str(v) for k, v in extra.items()}}

    async def _call(self, method: str, path: str, op: str, **extra: Any) -> Any:
        async with self.http.request(method, self._url(path), params=self._params(op, **extra)) as r:
            return await _json(r)

    async def stat(self, path: str) -> Stat | None:
        try:
            status = (await self._call("GET", path, "GETFILESTATUS"))["FileStatus"]
        except WebHdfsError as exc:
            if exc.exception == "FileNotFoundException":
                return None
            raise
        if status["type"] == "DIRECTORY":
            return Stat(is_dir=True)
        return Stat(is_dir=False, size=int(status["length"]))

    async def listdir(self, path: str) -> list[Entry]:
        statuses = (await self._call("GET", path, "LISTSTATUS"))["FileStatuses"]["FileStatus"]
        return [
            Entry(s["pathSuffix"], True)
            if s["type"] == "DIRECTORY"
            else Entry(s["pathSuffix"], False, int(s["length"]))
            for s in statuses
        ]

    async def mkdir(self, path: str) -> None:
        await self.makedirs(path)

    async def makedirs(self, path: str) -> None:
        # MKDIRS creates the parents itself, in one call.
        try:
            await self._call("PUT", path, "MKDIRS")
        except WebHdfsError as exc:
            if exc.exception in ("ParentNotDirectoryException", "FileAlreadyExistsException"):
                raise ParentIsFile(path) from None
            raise

    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        params = self._params("CREATE", overwrite="false")
        # Step 1 names no data: the namenode (or HttpFS) answers 307 with where the bytes go.
        async with self.http.put(self._url(path), params=params, allow_redirects=False) as r:
            if r.status != 307:
                await _json(r)
                raise WebHdfsError(r.status, "UnexpectedResponse", "CREATE did not redirect to a datanode")
            location = r.headers["Location"]
        headers = {"Content-Type": "application/octet-stream"}
        async with self.http.put(location, data=counted(), headers=headers) as r:
            await _json(r)
        return size

    async def replace(self, source: str, target: str) -> None:
        done = await self._call("PUT", source, "RENAME", destination=target, renameoptions="OVERWRITE")
        if not done.get("boolean", True):
            # A gateway without rename options: HDFS's plain rename refuses an existing target.
            await self.remove_file(target)
            await self._call("PUT", source, "RENAME", destination=target)

    async def read(self, path: str, start: int, length: int) -> AsyncIterator[bytes]:
        params = self._params("OPEN", offset=start, length=length)
        async with self.http.get(self._url(path), params=params) as r:  # follows the datanode redirect
            if r.status >= 400:
                await _json(r)
            async for chunk in r.content.iter_chunked(CHUNK_SIZE):
                yield chunk

    async def remove_file(self, path: str) -> None:
        await self._call("DELETE", path, "DELETE", recursive="false")

    async def remove_dir(self, path: str) -> None:
        await self._call("DELETE", path, "DELETE", recursive="false")


async def _json(r: aiohttp.ClientResponse) -> Any:
    """The JSON body of a WebHDFS answer; RemoteException bodies become WebHdfsError."""
    try:
        body = await r.json(content_type=None) if r.content_length != 0 else None
    except ValueError:
        # Not WebHDFS at all (a web UI, a proxy's error page): most likely WEBHDFS_URL or the
        # port names another service. Said plainly instead of as a JSON decoding traceback.
        raise MlflowError(
            ErrorCode.INTERNAL_ERROR,
            f"The WebHDFS endpoint at {_address(str(r.url))} answered {r.status} with a body that is not "
            "WebHDFS JSON; check WEBHDFS_URL or the namenode's HTTP port.",
        ) from None
    if r.status >= 400:
        remote = (body or {}).get("RemoteException", {}) if isinstance(body, dict) else {}
        raise WebHdfsError(r.status, remote.get("exception", "HTTPError"), remote.get("message", r.reason or ""))
    return body or {}


def _address(url: str) -> str:
    """host:port of a URL, never its user info or query (which may carry a user or a token)."""
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"


class WebHdfsRepository(FileTreeRepository):
    def __init__(self, backend: WebHdfsBackend, base: str, user: str | None, root: str) -> None:
        super().__init__(root)
        self.backend, self.base = backend, base
        token = os.environ.get("WEBHDFS_DELEGATION_TOKEN")
        self.auth = {"delegation": token} if token else ({"user.name": user} if user else {})

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[FileSession]:
        try:
            yield WebHdfsSession(self.backend.http, self.base, self.auth)
        except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError) as exc:
            # Nothing listening, a name that does not resolve, a namenode or datanode gone quiet.
            raise StoreUnavailable("HDFS", _address(self.base), exc) from None


class WebHdfsBackend(Backend):
    def __init__(self) -> None:
        self.http: aiohttp.ClientSession = None  # type: ignore[assignment]

    async def start(self) -> None:
        # Idle timeouts only: a large file is many short reads.
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    def repository(self, uri: str) -> ArtifactRepository:
        base, user, path = endpoint(uri)
        return WebHdfsRepository(self, base, user, path)


def register(registry: Registry) -> None:
    for scheme in ("hdfs", "webhdfs", "swebhdfs"):
        registry.register(scheme, WebHdfsBackend)
