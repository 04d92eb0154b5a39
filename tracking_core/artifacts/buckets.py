"""What the object-store repositories (S3, GCS) share: a bucket, a key prefix, folders and ranges.

Object stores have no directories: a "folder" is every key under `<key>/`, and the repository's
root is a key prefix inside the bucket (`s3://bucket/prefix`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from tracking_core.artifacts import paths
from tracking_core.artifacts.repository import ArtifactRepository
from tracking_core.errors import invalid


class BucketRepository(ArtifactRepository):
    def __init__(self, backend: Any, bucket: str, prefix: str) -> None:
        self.backend = backend
        self.bucket = bucket
        self.prefix = prefix

    def key(self, path: str) -> str:
        return paths.join(self.prefix, path)

    def folder(self, path: str) -> str:
        """The key prefix that lists the folder at `path`: its key and "/", or "" at the bucket root."""
        key = self.key(path)
        return key + "/" if key else ""


def range_header(start: int | None, end: int | None) -> str:
    """An HTTP Range for bytes start..end (inclusive; None = from 0 / to the end)."""
    return f"bytes={start or 0}-{'' if end is None else end}"


def bucket_and_prefix(uri: str, store: str) -> tuple[str, str]:
    """("bucket", "key/prefix") of `scheme://bucket/key/prefix`."""
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise invalid(f"{store} artifact location {uri!r} names no bucket.")
    return parsed.netloc, parsed.path.strip("/")
