"""The one interface every artifact store implements, and the registry that finds one by URI scheme.

A *backend* owns what is expensive and shared (an S3 client, an HTTP session with a token
cache) and is started and closed once per process; a *repository* is a cheap view of one root
(`s3://bucket/prefix`, `/srv/mlartifacts`) on top of it. Built-in backends (local, s3, gs) are
modules with a `register(registry)` function, listed in BUILTIN_BACKENDS: a new store is added
the same way, by naming its module.

Every path a repository receives is relative to its root and already cleaned by
`tracking_core.artifacts.paths.clean` ("" is the root itself). Bytes move in chunks of about
CHUNK_SIZE in both directions; nothing holds a whole file in memory.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

from tracking_core.errors import ErrorCode, MlflowError

CHUNK_SIZE = 1024 * 1024
BUILTIN_BACKENDS = (
    "tracking_core.artifacts.local",
    "tracking_core.artifacts.s3",
    "tracking_core.artifacts.gcs",
    "tracking_core.artifacts.ftp",
    "tracking_core.artifacts.sftp",
    "tracking_core.artifacts.azure",
    "tracking_core.artifacts.hdfs",
)
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
PRESIGNED_UNSUPPORTED = "Multipart download is not supported for the current artifact repository"


class ArtifactNotFound(MlflowError):
    def __init__(self, path: str) -> None:
        super().__init__(ErrorCode.RESOURCE_DOES_NOT_EXIST, f"Artifact '{path}' does not exist.")


class IsADirectory(MlflowError):
    def __init__(self, path: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMETER_VALUE, f"Artifact '{path}' is a directory, not a file.")


class NotSupported(MlflowError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NOT_IMPLEMENTED, message)


@dataclass(frozen=True)
class Capabilities:
    # The client PUTs parts straight to presigned URLs (mpu/create|complete|abort).
    multipart_upload: bool = False
    # The client may download straight from the store (GET /presigned/...).
    presigned_download: bool = False


@dataclass(frozen=True)
class Entry:
    """One item of a listing: a basename, and a size for files."""

    name: str
    is_dir: bool
    size: int | None = None


@dataclass(frozen=True)
class Stat:
    is_dir: bool
    size: int | None = None


@dataclass
class Download:
    """An open file: `size` is the whole file, `start`/`end` the inclusive byte range served.

    `chunks` must be consumed or closed (`aclose()`), which releases the file or connection.
    """

    size: int
    start: int
    end: int
    chunks: AsyncIterator[bytes] = field(repr=False)

    @property
    def length(self) -> int:
        return max(0, self.end - self.start + 1)

    async def aclose(self) -> None:
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()


@dataclass(frozen=True)
class PartCredential:
    part_number: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MultipartUpload:
    upload_id: str
    credentials: list[PartCredential]


@dataclass(frozen=True)
class Presigned:
    url: str
    size: int
    headers: dict[str, str] = field(default_factory=dict)


class ArtifactRepository(abc.ABC):
    """A tree of files under one root. Writes become visible only once complete."""

    capabilities = Capabilities()

    @abc.abstractmethod
    async def upload(self, path: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        """Store the stream under `path` (overwriting); return its size.

        If the stream fails part-way, nothing is left under `path` (nor any temporary name):
        the previous content, if any, stays.
        """

    @abc.abstractmethod
    async def download(self, path: str, start: int | None = None, end: int | None = None) -> Download:
        """Open `path` for reading bytes start..end (inclusive; None = from 0 / to the end).

        Raises ArtifactNotFound, IsADirectory. Callers validate the range against `stat` first.
        """

    @abc.abstractmethod
    async def list_dir(self, path: str) -> list[Entry] | None:
        """The direct children of directory `path`, sorted by name; None if it is no directory."""

    @abc.abstractmethod
    async def stat(self, path: str) -> Stat | None:
        """File or directory at `path`, or None."""

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Remove the file or the whole tree at `path`; absent is not an error."""

    async def create_multipart(self, path: str, num_parts: int) -> MultipartUpload:
        raise NotSupported(MULTIPART_UNSUPPORTED)

    async def complete_multipart(self, path: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        raise NotSupported(MULTIPART_UNSUPPORTED)

    async def abort_multipart(self, path: str, upload_id: str) -> None:
        raise NotSupported(MULTIPART_UNSUPPORTED)

    async def presign_download(self, path: str, ttl_seconds: int) -> Presigned:
        raise NotSupported(PRESIGNED_UNSUPPORTED)


class Backend(abc.ABC):
    """Shared state for one kind of store; `repository(uri)` is cheap and may be called often."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients; called once before the first repository is handed out."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what start() opened."""

    @abc.abstractmethod
    def repository(self, uri: str) -> ArtifactRepository:
        """A repository rooted at `uri` (a URI of one of the schemes this backend registered)."""


BackendFactory = Callable[[], Backend]


class Registry:
    """Scheme → backend factory. `scheme` "" stands for plain local paths."""

    def __init__(self) -> None:
        self._factories: dict[str, BackendFactory] = {}

    def register(self, scheme: str, factory: BackendFactory) -> None:
        self._factories[scheme.lower()] = factory

    def factory(self, scheme: str) -> BackendFactory | None:
        return self._factories.get(scheme.lower())

    @property
    def schemes(self) -> list[str]:
        return sorted(self._factories)


def default_registry(modules: Iterable[str] = BUILTIN_BACKENDS) -> Registry:
    """A registry with the given backend modules, each registered through its `register()`."""
    registry = Registry()
    for name in modules:
        importlib.import_module(name).register(registry)
    return registry


def scheme_of(uri: str) -> str:
    """ "s3" for s3://b/p, "" for a plain path (including Windows drive letters)."""
    head, sep, _ = uri.partition(":")
    if not sep or len(head) <= 1 or "/" in head:
        return ""
    return head.lower()


class ArtifactStores:
    """Every backend this process has opened, keyed by factory; closed together at shutdown.

    Backends start lazily so a server whose runs all live on local disk never builds an S3
    client, and one that reads runs from several buckets shares one client for all of them.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._backends: dict[BackendFactory, Backend] = {}
        self._lock = asyncio.Lock()

    async def repository(self, uri: str) -> ArtifactRepository:
        scheme = scheme_of(uri)
        factory = self.registry.factory(scheme)
        if factory is None:
            raise MlflowError(
                ErrorCode.INVALID_PARAMETER_VALUE,
                f"Artifact location scheme '{scheme}' is not supported by this server "
                f"(supported: {', '.join(s or 'local path' for s in self.registry.schemes)}).",
            )
        backend = self._backends.get(factory)
        if backend is None:
            async with self._lock:
                backend = self._backends.get(factory)
                if backend is None:
                    backend = factory()
                    await backend.start()
                    self._backends[factory] = backend
        return backend.repository(uri)

    async def close(self) -> None:
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            with contextlib.suppress(Exception):
                await backend.close()

    async def __aenter__(self) -> ArtifactStores:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
