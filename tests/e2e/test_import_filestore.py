"""`trackgate import-mlflow --from ./mlruns`: MLflow's file store, written by the real client.

MLflow 3.x keeps the file store in maintenance mode: the client refuses it unless
MLFLOW_ALLOW_FILE_STORE=true, which is how teams that still have one keep using it (and how this
test writes one). The expectation is `mlflow server` on that folder.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.importer.compare import differences, snapshot
from tests.importer.mlflow_data import HISTORY_POINTS, populate
from tests.importer.processes import mlflow_server, run_import
from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow


def file_store_reading(expected: dict[str, Any]) -> dict[str, Any]:
    """What MLflow's FileStore reports differently from its SQL stores, undone (the data is not
    different, its reading is):
    - a run's latest metrics carry run_id (and dataset fields), which the SQL stores never send;
    - a metric line that names a dataset ("ts value step name digest") is read back as step 0
      (with the dataset fields): the file, and the client call that wrote it, say step 2;
    - infinities come back as inf; the SQL stores hold (and `mlflow migrate-filestore` writes)
      the largest doubles, as the importer does.
    """
    for run in expected["runs"].values():
        for metric in run.get("data", {}).get("metrics", []):
            for field in ("run_id", "dataset_name", "dataset_digest"):
                metric.pop(field, None)
            if metric["key"] == "accuracy":
                metric["step"] = "2"
        for key, points in run["histories"].items():
            run["histories"][key] = sorted(
                (
                    [
                        k,
                        math.copysign(sys.float_info.max, v) if isinstance(v, float) and math.isinf(v) else v,
                        t,
                        2 if k == "accuracy" else s,
                    ]
                    for k, v, t, s in points
                ),
                key=repr,
            )
    return expected


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
        expected = file_store_reading(snapshot(MlflowClient(source_server.url())))
    assert differences(expected, actual) == []
    again = run_import(f"file:{store}", target)
    assert again.returncode == 0, again.stderr
