from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tests.artifacts.stores import S3Server, moto_s3
from tests.server_process import RunningServer, trackgate_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One `trackgate server` subprocess per test module, on SQLite with local artifacts."""
    with trackgate_server(Path(tmp_path_factory.mktemp("server"))) as running:
        yield running


@pytest.fixture
def tracking(server: RunningServer) -> Iterator[str]:
    """Point the official mlflow client at the server, as MLFLOW_TRACKING_URI would."""
    mlflow.set_tracking_uri(server.url)
    yield server.url
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri("")


@contextlib.contextmanager
def proxied_server(storage: str, workdir: Path, s3: S3Server | None = None) -> Iterator[RunningServer]:
    """`trackgate server` proxying artifacts to local disk ("local") or to moto's S3 under the key
    prefix `proxied/` ("s3"; a moto server of its own unless `s3` is given)."""
    if storage == "local":
        with trackgate_server(workdir) as running:
            yield running
        return
    with contextlib.ExitStack() as stack:
        s3 = s3 or stack.enter_context(moto_s3())
        dest = f"s3://{s3.bucket}/proxied"
        yield stack.enter_context(trackgate_server(workdir, "--artifacts-destination", dest, env=s3.env))
