"""`--static-prefix /mlflow`: every route moves under the prefix, as with `mlflow server`."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow


def test_client_works_under_a_prefix_and_the_core_stays_healthy(tmp_path: Path) -> None:
    with trackgate_server(tmp_path, "--static-prefix", "/mlflow") as server:
        base = server.url + "/mlflow"
        assert requests.get(base + "/version", timeout=5).text == mlflow.__version__
        assert requests.get(base + "/health", timeout=5).text == "OK"
        unprefixed = requests.get(server.url + "/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"},
                                  timeout=5)
        assert unprefixed.status_code == 404
        client = MlflowClient(tracking_uri=base)
        experiment_id = client.create_experiment("prefixed")
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "m", 1.0)
        # Outlive a few of the supervisor's liveness checks: they must not mistake the prefix for a dead core.
        time.sleep(2.5)
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
        assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
