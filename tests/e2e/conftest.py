from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

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
