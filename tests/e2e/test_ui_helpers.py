"""The /ajax-api helper endpoints `mlflow server` serves for its UI, against `trackgate server`
with data from the official mlflow client; the answers compared with MLflow's handlers' shapes."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests

from tests.server_process import RunningServer

pytestmark = pytest.mark.slow
AJAX = "/ajax-api/2.0/mlflow"


def test_get_history_bulk(server: RunningServer, tracking: str) -> None:
    mlflow.set_experiment("bulk")
    ids = []
    for n in (3, 5):
        with mlflow.start_run() as run:
            for step in range(n):
                mlflow.log_metric("loss", step / 10, step=step)
        ids.append(run.info.run_id)
    r = requests.get(server.url + AJAX + "/metrics/get-history-bulk", params={"run_id": ids, "metric_key": "loss"})
    assert r.status_code == 200, r.text
    points = r.json()["metrics"]
    assert len(points) == 8
    assert [p["run_id"] for p in points] == sorted(p["run_id"] for p in points)
    assert set(points[0]) == {"key", "value", "timestamp", "step", "run_id"}
    limited = requests.get(server.url + AJAX + "/metrics/get-history-bulk",
                           params={"run_id": ids, "metric_key": "loss", "max_results": 2}).json()["metrics"]
    assert len(limited) == 4
    missing = requests.get(server.url + AJAX + "/metrics/get-history-bulk", params={"metric_key": "loss"})
    assert missing.status_code == 400
    assert missing.json()["message"] == "GetMetricHistoryBulk request must specify at least one run_id."
    # A UI helper, not an API route: /api/ answers ENDPOINT_NOT_FOUND as mlflow server does.
    assert requests.get(server.url + "/api/2.0/mlflow/metrics/get-history-bulk").status_code == 404


def test_search_datasets(server: RunningServer, tracking: str) -> None:
    experiment_id = mlflow.set_experiment("datasets").experiment_id
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    with mlflow.start_run():
        mlflow.log_input(mlflow.data.from_pandas(frame, name="train-set"), context="training")
    r = requests.post(server.url + AJAX + "/experiments/search-datasets", json={"experiment_ids": [experiment_id]})
    assert r.status_code == 200, r.text
    (summary,) = r.json()["dataset_summaries"]
    assert summary["experiment_id"] == experiment_id
    assert summary["name"] == "train-set" and summary["context"] == "training" and summary["digest"]
    empty = requests.post(server.url + AJAX + "/experiments/search-datasets", json={})
    assert empty.status_code == 400


def test_upload_artifact(server: RunningServer, tracking: str) -> None:
    mlflow.set_experiment("uploads")
    with mlflow.start_run() as run:
        pass
    r = requests.post(server.url + AJAX + "/upload-artifact",
                      params={"run_uuid": run.info.run_id, "path": "notes/hello.txt"}, data=b"hello")
    assert r.status_code == 200, r.text
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="notes/hello.txt")
    assert Path(local).read_bytes() == b"hello"
    bad = requests.post(server.url + AJAX + "/upload-artifact",
                        params={"run_uuid": run.info.run_id, "path": "../x"}, data=b"x")
    assert bad.status_code == 400
    empty = requests.post(server.url + AJAX + "/upload-artifact",
                          params={"run_uuid": run.info.run_id, "path": "x.txt"}, data=b"")
    assert empty.json()["message"] == "Request must specify data."
