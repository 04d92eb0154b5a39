"""`trackgate import-mlflow --from ./mlruns`: MLflow's file store, written by the real client.

MLflow 3.x keeps the file store in maintenance mode: the client refuses it unless
MLFLOW_ALLOW_FILE_STORE=true, which is how teams that still have one keep using it (and how this
test writes one). The expectation is `mlflow server` on that folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.importer.compare import differences, snapshot
from tests.importer.mlflow_data import HISTORY_POINTS, populate
from tests.importer.processes import mlflow_server, run_import
from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow


def test_file_store_imports_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "mlruns"
    populate(f"file://{store}")
    target = f"sqlite:///{tmp_path}/trackgate.db"
    with mlflow_server(f"file://{store}", tmp_path) as source_server:
        done = run_import(str(store), target, "--batch-size", "500")
        assert done.returncode == 0, done.stderr
        assert "(MLflow schema file store)" in done.stdout
        assert f"metrics: {HISTORY_POINTS + 7:,}" in done.stdout
        with trackgate_server(tmp_path / "trackgate", "--backend-store-uri", target) as server:
            actual = snapshot(MlflowClient(server.url))
        expected = snapshot(MlflowClient(source_server.url()))
    assert differences(expected, actual) == []
    again = run_import(f"file:{store}", target)
    assert again.returncode == 0, again.stderr
