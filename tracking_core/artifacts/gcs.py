"""Artifacts in Google Cloud Storage over its JSON API, with one aiohttp session per process.

Uploads use a resumable session: the body goes up in CHUNK-sized PUTs (a multiple of 256 KiB,
as GCS requires) and the object exists only when the last one, carrying the total size,
lands; a failed upload cancels its session, so nothing half-written is ever visible. Downloads
are ranged media GETs streamed in CHUNK_SIZE pieces. `STORAGE_EMULATOR_HOST` points the backend
at an emulator, as it does for Google's own clients; credentials are in `gcs_auth`.

Multipart (client-side presigned parts) and presigned downloads are not offered: both need URL
signing with a private key, which an instance's metadata-server token cannot do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from tracking_core.artifacts import paths
from tracking_core.artifacts.buckets import BucketRepository, bucket_and_prefix, range_header
from tracking_core.artifacts.gcs_auth import TokenSource
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
from tracking_core.errors import ErrorCode, MlflowError, invalid

UPLOAD_CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB
DELETE_CONCURRENCY = 16


class GcsError(MlflowError):
    def __init__(self, what: str, status: int) -> None:
        # 5xx and 429 from GCS are worth a client retry; anything else is not.
        code = (
            ErrorCode.TEMPORARILY_UNAVAILABLE if status >= 500 or status == 429 else ErrorCode.INTERNAL_ERROR
        )
        super().__init__(code, f"Google Cloud Storage answered HTTP {status} to {what}.")


class GcsRepository(BucketRepository):
    backend: GcsBackend

    def _object_url(self, key: str, api: str = "storage") -> URL:
        base = self.backend.base_url
        path = f"/{api}/v1/b/{quote(self.bucket, safe='')}/o/{quote(key, safe='')}"
        return URL(base + path, encoded=True)

    async def _request(self, method: str, url: URL | str, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {**kwargs.pop("headers", {}), **await self.backend.tokens.headers()}
        # GCS answers an accepted upload chunk with 308 "Resume Incomplete", which is no redirect.
        return await self.backend.session.request(
            method, url, headers=headers, allow_redirects=False, **kwargs
        )

    async def upload(self, path: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        if not path:
            raise invalid(paths.INVALID_PATH)
        key = self.key(path)
        start_url = URL(
            f"{self.backend.base_url}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o"
            f"?uploadType=resumable&name={quote(key, safe='')}",
            encoded=True,
        )
        metadata = {"name": key, "contentType": content_type or "application/octet-stream"}
        async with await self._request("POST", start_url, json=metadata) as r:
            if r.status != 200:
                raise GcsError("starting an upload", r.status)
            session_url = URL(r.headers["Location"], encoded=True)
        buf = bytearray()
        offset = 0
        pending: asyncio.Task[None] | None = None
        try:
            async for chunk in chunks:
                buf += chunk
                if len(buf) < UPLOAD_CHUNK:
                    continue
                if pending is not None:
                    await pending
                body, buf = bytes(buf[:UPLOAD_CHUNK]), buf[UPLOAD_CHUNK:]
                # Chunks must arrive in order, so at most one is in flight while the next fills.
                pending = asyncio.create_task(self._put_chunk(session_url, offset, body, None))
                offset += len(body)
            if pending is not None:
                await pending
                pending = None
            total = offset + len(buf)
            await self._put_chunk(session_url, offset, bytes(buf), total)
            return total
        except BaseException:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            # Shielded: a cancelled handler must still cancel the session, which drops its data.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._cancel(session_url))
            raise

    async def _put_chunk(self, session_url: URL, offset: int, body: bytes, total: int | None) -> None:
        if body:
            content_range = f"bytes {offset}-{offset + len(body) - 1}/{'*' if total is None else total}"
        else:
            content_range = f"bytes */{total}"
        async with await self._request(
            "PUT", session_url, data=body, headers={"Content-Range": content_range}
        ) as r:
            expected = (200, 201) if total is not None else (308,)
            if r.status not in expected:
                raise GcsError("an upload chunk", r.status)
            if total is None and r.headers.get("Range") != f"bytes=0-{offset + len(body) - 1}":
                # GCS kept less than it was sent; resending the tail is possible but rare
                # enough that failing the upload (the client retries it) is the simpler answer.
                raise GcsError("an upload chunk (partially stored)", 503)

    async def _cancel(self, session_url: URL) -> None:
        async with await self._request("DELETE", session_url) as r:
            await r.read()

    async def download(self, path: str, start: int | None = None, end: int | None = None) -> Download:
        headers = {}
        if start is not None or end is not None:
            headers["Range"] = range_header(start, end)
        url = self._object_url(self.key(path), api="download/storage").with_query(alt="media")
        r = await self._request("GET", url, headers=headers)
        if r.status == 404:
            r.release()
            raise ArtifactNotFound(path)
        if r.status not in (200, 206):
            r.release()
            raise GcsError("a download", r.status)
        length = int(r.headers.get("Content-Length", "0"))
        content_range = r.headers.get("Content-Range")
        total = int(content_range.rsplit("/", 1)[1]) if r.status == 206 and content_range else length
        first = (start or 0) if r.status == 206 else 0
        return Download(size=total, start=first, end=first + length - 1, chunks=_body(r))

    async def _list(
        self, prefix: str, delimiter: bool, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        url = URL(f"{self.backend.base_url}/storage/v1/b/{quote(self.bucket, safe='')}/o", encoded=True)
        query: dict[str, str] = {"prefix": prefix}
        if delimiter:
            query["delimiter"] = "/"
        if limit:
            query["maxResults"] = str(limit)
        while True:
            async with await self._request("GET", url.with_query(query)) as r:
                if r.status != 200:
                    raise GcsError("a listing", r.status)
                page = await r.json(content_type=None)
            yield page
            token = page.get("nextPageToken")
            if not token or limit:
                return
            query["pageToken"] = token

    async def list_dir(self, path: str) -> list[Entry] | None:
        prefix = self.folder(path)
        entries: list[Entry] = []
        async for page in self._list(prefix, delimiter=True):
            entries.extend(Entry(p[len(prefix) :].rstrip("/"), True) for p in page.get("prefixes") or [])
            for item in page.get("items") or []:
                name = item["name"][len(prefix) :]
                if name:
                    entries.append(Entry(name, False, int(item.get("size", 0))))
        return sorted(entries, key=lambda e: e.name) if entries else None

    async def stat(self, path: str) -> Stat | None:
        key = self.key(path)
        if path:
            async with await self._request("GET", self._object_url(key)) as r:
                if r.status == 200:
                    return Stat(is_dir=False, size=int((await r.json(content_type=None)).get("size", 0)))
                if r.status != 404:
                    raise GcsError("an object lookup", r.status)
        async for page in self._list(self.folder(path), delimiter=True, limit=1):
            if page.get("items") or page.get("prefixes"):
                return Stat(is_dir=True)
        return None

    async def delete(self, path: str) -> None:
        key = self.key(path)
        names = [key] if key else []
        async for page in self._list(self.folder(path), delimiter=False):
            names.extend(item["name"] for item in page.get("items") or [])
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def remove(name: str) -> None:
            async with limit, await self._request("DELETE", self._object_url(name)) as r:
                if r.status not in (200, 204, 404):
                    raise GcsError("a delete", r.status)

        await asyncio.gather(*(remove(n) for n in names))


async def _body(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_chunked(CHUNK_SIZE):
            yield chunk
    finally:
        response.release()


class GcsBackend(Backend):
    def __init__(self) -> None:
        import os

        emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
        if emulator and "://" not in emulator:
            emulator = "http://" + emulator
        self.base_url = (emulator or "https://storage.googleapis.com").rstrip("/")
        self.session: aiohttp.ClientSession = None  # type: ignore[assignment]
        self.tokens: TokenSource = None  # type: ignore[assignment]

    async def start(self) -> None:
        # No total timeout: a chunk of a slow upload may take long; only silence is an error.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
        self.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        self.tokens = TokenSource(self.session)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def repository(self, uri: str) -> ArtifactRepository:
        return GcsRepository(self, *bucket_and_prefix(uri, "GCS"))


def register(registry: Registry) -> None:
    registry.register("gs", GcsBackend)
