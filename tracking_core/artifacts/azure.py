"""Artifacts in Azure Blob Storage, through azure-storage-blob's asyncio client (aiohttp transport).

Locations are MLflow's `wasbs://<container>@<account>.blob.core.windows.net/<path>` (and the
China / US Government cloud suffixes), plus `abfss://<container>@<account>.dfs.core.windows.net/
<path>` for ADLS Gen2 accounts, which are reached through their Blob endpoint (the Blob API
works on hierarchical-namespace accounts; directory marker blobs are hidden and deleted last).

Credentials as MLflow reads them: AZURE_STORAGE_CONNECTION_STRING (used for every location,
whatever account it names; a BlobEndpoint in it points at Azurite or a private endpoint), else
AZURE_STORAGE_ACCESS_KEY for the location's account, else azure-identity's
DefaultAzureCredential (environment, workload or managed identity, Azure CLI), when installed.

Uploads: a body that fits in one block is one Put Blob; anything larger is staged in blocks, one
in flight while the next fills, and committed only at the end of the body. Staged but
uncommitted blocks are invisible and expire on their own, so an interrupted upload leaves the
previous blob, if any, as it was.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import urlparse

from tracking_core.artifacts import paths
from tracking_core.artifacts.buckets import BucketRepository
from tracking_core.artifacts.repository import (
    CHUNK_SIZE,
    ArtifactNotFound,
    ArtifactRepository,
    Backend,
    Download,
    Entry,
    Registry,
    Stat,
)
from tracking_core.errors import invalid

BLOCK_SIZE = 8 * 1024 * 1024  # 50,000 committed blocks per blob: 390 GiB
GET_SIZE = 8 * 1024 * 1024  # per ranged GET; the SDK holds a whole GET in memory (16 MiB ones: +71 MiB RSS)
DELETE_CONCURRENCY = 16
_NETLOC = re.compile(
    r"(?P<container>[^@/]+)@(?P<account>[^.]+)\."
    r"(?P<kind>blob|dfs)\.(?P<suffix>core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net))"
)
FORM = "wasbs://<container>@<account>.blob.core.windows.net/<path>"


def parse_location(uri: str) -> tuple[str, str, str, str]:
    """(container, account, Blob endpoint suffix, path) of a wasbs/wasb/abfss/abfs URI."""
    parsed = urlparse(uri)
    match = _NETLOC.fullmatch(parsed.netloc)
    if match is None:
        raise invalid(f"Azure artifact locations have the form {FORM} (or abfss://…dfs.core.windows.net).")
    return match["container"], match["account"], "blob." + match["suffix"], parsed.path.strip("/")


def _block_id(upload: str, index: int) -> str:
    # Every id of one blob must have the same length; the upload's own prefix keeps two
    # concurrent uploads of one name from committing each other's blocks.
    return base64.b64encode(f"{upload}-{index:06d}".encode()).decode()


def _is_folder_marker(blob: Any) -> bool:
    return (getattr(blob, "metadata", None) or {}).get("hdi_isfolder") == "true"


class AzureRepository(BucketRepository):
    backend: AzureBackend

    def __init__(self, backend: AzureBackend, account: str, suffix: str, container: str, prefix: str) -> None:
        super().__init__(backend, container, prefix)
        self.account, self.suffix = account, suffix

    @property
    def container(self) -> Any:
        return self.backend.service(self.account, self.suffix).get_container_client(self.bucket)

    async def upload(self, path: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        from azure.storage.blob import BlobBlock, ContentSettings

        if not path:
            raise invalid(paths.INVALID_PATH)
        blob = self.container.get_blob_client(self.key(path))
        settings = ContentSettings(content_type=content_type) if content_type else None
        upload = uuid.uuid4().hex
        buf = bytearray()
        size = 0
        blocks: list[str] = []
        pending: asyncio.Task[None] | None = None
        try:
            async for chunk in chunks:
                buf += chunk
                size += len(chunk)
                if len(buf) < BLOCK_SIZE:
                    continue
                if pending is not None:
                    await pending
                block = _block_id(upload, len(blocks))
                blocks.append(block)
                # One block in flight while the next fills: throughput without unbounded memory.
                pending = asyncio.create_task(self._stage(blob, block, bytes(buf)))
                buf = bytearray()
            if not blocks:
                await blob.upload_blob(bytes(buf), overwrite=True, content_settings=settings)
                return size
            if pending is not None:
                await pending
                pending = None
            if buf:
                block = _block_id(upload, len(blocks))
                blocks.append(block)
                await self._stage(blob, block, bytes(buf))
            await blob.commit_block_list([BlobBlock(block_id=b) for b in blocks], content_settings=settings)
            return size
        except BaseException:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            raise

    async def _stage(self, blob: Any, block: str, body: bytes) -> None:
        await blob.stage_block(block, body, length=len(body))

    async def download(self, path: str, start: int | None = None, end: int | None = None) -> Download:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self.container.get_blob_client(self.key(path))
        first = start or 0
        ranged: dict[str, int | None] = {}
        if start is not None or end is not None:
            ranged = {"offset": first, "length": None if end is None else end - first + 1}
        try:
            downloader = await blob.download_blob(**ranged)
        except ResourceNotFoundError:
            raise ArtifactNotFound(path) from None
        total = int(downloader.properties.content_range.rsplit("/", 1)[1])
        return Download(size=total, start=first, end=first + downloader.size - 1, chunks=_pieces(downloader))

    async def list_dir(self, path: str) -> list[Entry] | None:
        prefix = self.folder(path)
        entries: list[Entry] = []
        async for item in self.container.walk_blobs(name_starts_with=prefix, delimiter="/", include=["metadata"]):
            name = item.name[len(prefix) :]
            if name.endswith("/"):
                entries.append(Entry(name.rstrip("/"), True))
            elif name and not _is_folder_marker(item):
                entries.append(Entry(name, False, int(item.size)))
        return sorted(entries, key=lambda e: e.name) if entries else None

    async def stat(self, path: str) -> Stat | None:
        from azure.core.exceptions import ResourceNotFoundError

        if path:
            try:
                props = await self.container.get_blob_client(self.key(path)).get_blob_properties()
                if not _is_folder_marker(props):
                    return Stat(is_dir=False, size=int(props.size))
            except ResourceNotFoundError:
                pass
        async for _ in self.container.list_blobs(name_starts_with=self.folder(path), results_per_page=1):
            return Stat(is_dir=True)
        return None

    async def delete(self, path: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        container = self.container
        names = [b.name async for b in container.list_blobs(name_starts_with=self.folder(path))]
        key = self.key(path)
        if key:
            names.append(key)
        # Deepest first: on hierarchical-namespace accounts a directory must be empty to go.
        names.sort(key=lambda n: n.count("/"), reverse=True)
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def delete_one(name: str) -> None:
            async with limit:
                with contextlib.suppress(ResourceNotFoundError):
                    await container.delete_blob(name)

        for _, level in itertools.groupby(names, key=lambda n: n.count("/")):
            await asyncio.gather(*(delete_one(n) for n in level))


async def _pieces(downloader: Any) -> AsyncIterator[bytes]:
    """The download's GETs, handed on in CHUNK_SIZE pieces."""
    async for chunk in downloader.chunks():
        view = memoryview(chunk)
        for i in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[i : i + CHUNK_SIZE])


class AzureBackend(Backend):
    def __init__(self) -> None:
        env = os.environ
        self.connection_string = env.get("AZURE_STORAGE_CONNECTION_STRING") or None
        self.access_key = env.get("AZURE_STORAGE_ACCESS_KEY") or None
        self._services: dict[tuple[str, str], Any] = {}
        self._credential: Any = None

    def service(self, account: str, suffix: str) -> Any:
        """The BlobServiceClient for `account` (one for everything with a connection string)."""
        from azure.storage.blob.aio import BlobServiceClient

        key = ("", "") if self.connection_string else (account, suffix)
        client = self._services.get(key)
        if client is not None:
            return client
        sizes = {"max_single_get_size": GET_SIZE, "max_chunk_get_size": GET_SIZE, "max_block_size": BLOCK_SIZE}
        if self.connection_string:
            client = BlobServiceClient.from_connection_string(self.connection_string, **sizes)
        else:
            url = f"https://{account}.{suffix}"
            if self.access_key:
                credential: Any = {"account_name": account, "account_key": self.access_key}
            else:
                credential = self._default_credential()
            client = BlobServiceClient(url, credential=credential, **sizes)
        self._services[key] = client
        return client

    def _default_credential(self) -> Any:
        if self._credential is None:
            try:
                from azure.identity.aio import DefaultAzureCredential
            except ImportError:
                raise invalid(
                    "Azure artifact locations need AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY, "
                    "or the azure-identity package for DefaultAzureCredential."
                ) from None
            self._credential = DefaultAzureCredential()
        return self._credential

    async def close(self) -> None:
        services, self._services = list(self._services.values()), {}
        for client in services:
            with contextlib.suppress(Exception):
                await client.close()
        if self._credential is not None:
            with contextlib.suppress(Exception):
                await self._credential.close()

    def repository(self, uri: str) -> ArtifactRepository:
        container, account, suffix, path = parse_location(uri)
        return AzureRepository(self, account, suffix, container, path)


def register(registry: Registry) -> None:
    for scheme in ("wasbs", "wasb", "abfss", "abfs"):
        registry.register(scheme, AzureBackend)
