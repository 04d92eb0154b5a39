from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.artifacts.azurite_server import AzuriteServer, azurite
from tests.artifacts.ftp_server import FtpServer, pyftpdlib_server
from tests.artifacts.sshd_server import SshServer, openssh_server
from tests.artifacts.stores import GcsServer, S3Server, environment, gcs_emulator, moto_s3
from tracking_core.app import build_app
from tracking_core.artifacts.repository import ArtifactRepository, ArtifactStores, default_registry
from tracking_core.settings import CoreSettings
from tracking_core.store import schema

Core = Callable[..., contextlib.AbstractAsyncContextManager[TestClient]]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="session")
def ftp_server() -> Iterator[FtpServer]:
    with pyftpdlib_server() as server:
        yield server


@pytest.fixture(scope="session")
def ftps_server() -> Iterator[FtpServer]:
    with pyftpdlib_server(tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    with openssh_server() as server:
        yield server


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    with azurite() as server:
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
    if kind == "gcs":
        gcs: GcsServer = request.getfixturevalue("gcs_server")
        return f"gs://{gcs.bucket}/{prefix}", gcs.env
    if kind in ("ftp", "ftps"):
        ftp: FtpServer = request.getfixturevalue(f"{kind}_server")
        return ftp.uri(f"srv/{prefix}"), ftp.env
    if kind == "sftp":
        ssh: SshServer = request.getfixturevalue("sshd")
        return ssh.uri(prefix), ssh.env
    if kind in ("wasbs", "abfss"):
        az: AzuriteServer = request.getfixturevalue("azurite_server")
        return az.uri(prefix, kind), az.env
    raise AssertionError(f"unknown store {kind}")


STORES = ["local", "s3", "gcs", "ftp", "ftps", "sftp", "wasbs", "abfss"]


@pytest.fixture(params=STORES)
async def repo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ArtifactRepository]:
    """The same contract suite runs on every repository implementation."""
    uri, env = destination_for(request.param, request, tmp_path)
    with environment(env):
        async with ArtifactStores(default_registry()) as stores:
            yield await stores.repository(uri)


@pytest.fixture
def core(tmp_path: Path) -> Core:
    """Start the core app with config overrides; SQLite database prepared as the server does."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[TestClient]:
        fields: dict[str, Any] = {
            "backend_store_uri": f"sqlite:///{tmp_path}/core.db",
            "artifacts_destination": str(tmp_path / "artifacts"),
            **overrides,
        }
        config = CoreSettings(**fields)
        if not config.artifacts_only:
            await schema.prepare(config)
        async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
            yield client

    return start
