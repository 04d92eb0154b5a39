"""Artifacts in S3 or any S3-compatible store (MinIO, Ceph, moto), through one aioboto3 client.

Configured the way boto and `mlflow server` users already configure it: AWS_* variables and
profiles (read by botocore itself), MLFLOW_S3_ENDPOINT_URL, MLFLOW_S3_IGNORE_TLS,
MLFLOW_S3_UPLOAD_EXTRA_ARGS (JSON, e.g. server-side encryption), MLFLOW_S3_EXPECTED_BUCKET_OWNER
and MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE (default "path": virtual-host names do not resolve for
most self-hosted endpoints). Signatures are always SigV4, so presigned URLs work everywhere.

Uploads: a body that fits in one part is a single PutObject; anything larger becomes a
multipart upload whose parts are sent while the next part is still arriving, and which is
completed only at the end of the body (aborted otherwise), so a half-sent file never appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from tracking_core.artifacts import paths
from tracking_core.artifacts.buckets import BucketRepository, bucket_and_prefix, range_header
from tracking_core.artifacts.repository import (
    CHUNK_SIZE,
    ArtifactNotFound,
    ArtifactRepository,
    Backend,
    Capabilities,
    Download,
    Entry,
    MultipartUpload,
    PartCredential,
    Presigned,
    Registry,
    Stat,
)
from tracking_core.errors import invalid

PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
PRESIGN_UPLOAD_TTL = 3600 * 6  # a part may sit in a client's queue for a while on slow links


def part_size(index: int) -> int:
    """Size of the index-th part (0-based): 8 MiB, growing by 8 MiB every 1000 parts, so 10,000
    parts cover 430 GiB while a typical file keeps small, evenly sized parts."""
    return PART_SIZE * (1 + index // 1000)


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3Repository(BucketRepository):
    backend: S3Backend

    capabilities = Capabilities(multipart_upload=True, presigned_download=True)

    @property
    def client(self) -> Any:
        return self.backend.client

    def _owner(self) -> dict[str, str]:
        owner = self.backend.expected_owner
        return {"ExpectedBucketOwner": owner} if owner else {}

    async def upload(self, path: str, chunks: AsyncIterable[bytes], content_type: str | None = None) -> int:
        if not path:
            raise invalid(paths.INVALID_PATH)
        key = self.key(path)
        extra = {**self.backend.upload_extra_args, **self._owner()}
        if content_type:
            extra.setdefault("ContentType", content_type)
        buf = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        pending: asyncio.Task[dict[str, Any]] | None = None
        try:
            async for chunk in chunks:
                buf += chunk
                size += len(chunk)
                index = len(parts) + (pending is not None)
                if len(buf) < part_size(index):
                    continue
                if upload_id is None:
                    created = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
                    upload_id = created["UploadId"]
                if pending is not None:
                    parts.append(await pending)
                # One part in flight while the next fills: throughput without unbounded memory.
                pending = asyncio.create_task(self._part(key, upload_id, index + 1, bytes(buf)))
                buf = bytearray()
            if upload_id is None:
                await self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buf), **extra)
                return size
            if pending is not None:
                parts.append(await pending)
                pending = None
            if buf:
                parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buf)))
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **self._owner(),
            )
            return size
        except BaseException:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            if upload_id is not None:
                # Shielded: the handler may be being cancelled, and an unaborted upload keeps
                # its parts (and the bill) forever unless the bucket has a lifecycle rule.
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                    )
            raise

    async def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        r = await self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **self._owner()
        )
        return {"PartNumber": number, "ETag": r["ETag"]}

    async def download(self, path: str, start: int | None = None, end: int | None = None) -> Download:
        kwargs: dict[str, Any] = {}
        if start is not None or end is not None:
            kwargs["Range"] = range_header(start, end)
        try:
            obj = await self.client.get_object(
                Bucket=self.bucket, Key=self.key(path), **kwargs, **self._owner()
            )
        except self.client.exceptions.NoSuchKey:
            raise ArtifactNotFound(path) from None
        length = int(obj["ContentLength"])
        content_range = obj.get("ContentRange")  # "bytes 0-9/100" when a range was asked for
        total = int(content_range.rsplit("/", 1)[1]) if content_range else length
        first = start or 0
        return Download(size=total, start=first, end=first + length - 1, chunks=_body(obj["Body"]))

    async def list_dir(self, path: str) -> list[Entry] | None:
        prefix = self.folder(path)
        entries: list[Entry] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/", **self._owner()
        ):
            for p in page.get("CommonPrefixes", []):
                entries.append(Entry(p["Prefix"][len(prefix) :].rstrip("/"), True))
            for o in page.get("Contents", []):
                name = o["Key"][len(prefix) :]
                if name:  # "dir/" marker objects made by some tools
                    entries.append(Entry(name, False, int(o["Size"])))
        return sorted(entries, key=lambda e: e.name) if entries else None

    async def stat(self, path: str) -> Stat | None:
        key = self.key(path)
        if path:
            try:
                head = await self.client.head_object(Bucket=self.bucket, Key=key, **self._owner())
                return Stat(is_dir=False, size=int(head["ContentLength"]))
            except self.client.exceptions.ClientError as exc:
                if _error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
        prefix = self.folder(path)
        page = await self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=prefix, MaxKeys=1, **self._owner()
        )
        return Stat(is_dir=True) if page.get("KeyCount", 0) else None

    async def delete(self, path: str) -> None:
        key = self.key(path)
        batch: list[dict[str, str]] = [{"Key": key}] if key else []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(
            Bucket=self.bucket, Prefix=self.folder(path), **self._owner()
        ):
            batch.extend({"Key": o["Key"]} for o in page.get("Contents", []))
            while len(batch) >= 1000:
                await self._delete_batch(batch[:1000])
                batch = batch[1000:]
        if batch:
            await self._delete_batch(batch)

    async def _delete_batch(self, objects: list[dict[str, str]]) -> None:
        await self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}, **self._owner()
        )

    async def create_multipart(self, path: str, num_parts: int) -> MultipartUpload:
        if not path or not 1 <= num_parts <= MAX_PARTS:
            raise invalid(f"num_parts must be between 1 and {MAX_PARTS}." if path else paths.INVALID_PATH)
        key = self.key(path)
        created = await self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, **self.backend.upload_extra_args, **self._owner()
        )
        upload_id = created["UploadId"]
        credentials = []
        for number in range(1, num_parts + 1):
            url = await self.client.generate_presigned_url(
                "upload_part",
                Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                ExpiresIn=PRESIGN_UPLOAD_TTL,
            )
            credentials.append(PartCredential(number, url))
        return MultipartUpload(upload_id, credentials)

    async def complete_multipart(self, path: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        await self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key(path),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]},
            **self._owner(),
        )

    async def abort_multipart(self, path: str, upload_id: str) -> None:
        await self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key(path), UploadId=upload_id)

    async def presign_download(self, path: str, ttl_seconds: int) -> Presigned:
        found = await self.stat(path)
        if found is None or found.is_dir:
            raise ArtifactNotFound(path)
        url = await self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(path)}, ExpiresIn=ttl_seconds
        )
        return Presigned(url=url, size=found.size or 0)


async def _body(body: Any) -> AsyncIterator[bytes]:
    """The object's bytes in CHUNK_SIZE pieces; the HTTP response is released however it ends."""
    try:
        async for chunk in body.iter_chunks(CHUNK_SIZE):
            yield chunk
    finally:
        body.close()


class S3Backend(Backend):
    def __init__(self) -> None:
        self.client: Any = None
        self._stack = contextlib.AsyncExitStack()
        env = os.environ
        self.endpoint_url = env.get("MLFLOW_S3_ENDPOINT_URL") or None
        self.verify = env.get("MLFLOW_S3_IGNORE_TLS", "").lower() not in ("1", "true", "yes")
        self.addressing_style = env.get("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE") or "path"
        self.expected_owner = env.get("MLFLOW_S3_EXPECTED_BUCKET_OWNER") or None
        extra = env.get("MLFLOW_S3_UPLOAD_EXTRA_ARGS")
        self.upload_extra_args: dict[str, Any] = json.loads(extra) if extra else {}

    async def start(self) -> None:
        import aioboto3  # imported here: a server without S3 artifacts never pays for it
        from botocore.config import Config as BotoConfig

        config = BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": self.addressing_style},
            # Idle timeouts only; a long transfer is many short reads, never one long call.
            connect_timeout=30,
            read_timeout=300,
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=64,
        )
        session = aioboto3.Session()
        self.client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=self.endpoint_url, config=config, verify=self.verify)
        )

    async def close(self) -> None:
        await self._stack.aclose()

    def repository(self, uri: str) -> ArtifactRepository:
        return S3Repository(self, *bucket_and_prefix(uri, "S3"))


def register(registry: Registry) -> None:
    registry.register("s3", S3Backend)
