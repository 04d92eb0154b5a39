"""Object stores on loopback for artifact tests: moto's S3 server and a GCS emulator.

S3: moto's standalone server (`ThreadedMotoServer`), reached through aioboto3 exactly as real S3
would be (see shared/TESTING_PARTS.md §1).

GCS: `gcp-storage-emulator` from PyPI, a third-party emulator of the GCS JSON API (resumable
uploads, ranged media downloads, listing with delimiter, delete) that runs offline in a thread.
It is not Google's service: it does not check credentials and keeps objects in memory. Our GCS
repository is tested against it through the same HTTP calls it makes to storage.googleapis.com.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from tests.services import free_port, missing

BUCKET = "artifacts"


@dataclass
class S3Server:
    endpoint: str
    bucket: str = BUCKET

    @property
    def env(self) -> dict[str, str]:
        """What a server process (or the mlflow client) needs to reach this store."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def reset(self) -> None:
        urllib.request.urlopen(
            urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        ).read()
        self.create_bucket()

    def create_bucket(self) -> None:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint, **_boto_kwargs())
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=self.bucket)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **_boto_kwargs())


def _boto_kwargs() -> dict[str, object]:
    from botocore.config import Config

    return {
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "region_name": "us-east-1",
        "config": Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    }


@contextlib.contextmanager
def moto_s3() -> Iterator[S3Server]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        missing(f"moto[server] ({exc})")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = S3Server(f"http://127.0.0.1:{port}")
        s3.create_bucket()
        yield s3
    finally:
        server.stop()


@dataclass
class GcsServer:
    endpoint: str
    bucket: str = BUCKET

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint}


@contextlib.contextmanager
def gcs_emulator() -> Iterator[GcsServer]:
    try:
        from gcp_storage_emulator.server import create_server
    except ImportError as exc:
        missing(f"gcp-storage-emulator ({exc})")
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(endpoint + "/").read()
        yield GcsServer(endpoint)
    finally:
        server.stop()


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (the S3/GCS backends read them when started)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
