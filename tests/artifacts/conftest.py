from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.artifacts.stores import GcsServer, S3Server, environment, gcs_emulator, moto_s3
from tracking_core.artifacts.repository import ArtifactRepository, ArtifactStores, default_registry


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GcsServer]:
    with gcs_emulator() as server:
        yield server


def destination_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """An artifact root of the given kind, unique to the test, and the environment it needs."""
    if kind == "local":
        return str(tmp_path / "store"), {}
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    if kind == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        return f"s3://{s3.bucket}/{prefix}", s3.env
    gcs: GcsServer = request.getfixturevalue("gcs_server")
    return f"gs://{gcs.bucket}/{prefix}", gcs.env


@pytest.fixture(params=["local", "s3", "gcs"])
async def repo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ArtifactRepository]:
    """The same contract suite runs on every repository implementation."""
    uri, env = destination_for(request.param, request, tmp_path)
    with environment(env):
        async with ArtifactStores(default_registry()) as stores:
            yield await stores.repository(uri)
