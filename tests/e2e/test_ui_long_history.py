"""A long metric history, sampled for charts by get-history-bulk-interval: past the seek threshold
the store seeks evenly spaced steps instead of reading every step; the answer must match MLflow's
rank-based sample for a training loop's evenly spaced steps, first and last step included."""

from __future__ import annotations

import time

import mlflow
import pytest
import requests
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from tests.server_process import RunningServer
from tracking_core.store.metric_history import SEEK_ABOVE, sample_steps

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stride", [1, 3], ids=["every-step", "every-third-step"])
def test_long_history_is_sampled_like_mlflow(server: RunningServer, tracking: str, stride: int) -> None:
    client = MlflowClient(tracking)
    run = client.create_run(mlflow.set_experiment("long").experiment_id)
    now = int(time.time() * 1000)
    steps = list(range(0, (SEEK_ABOVE + 5_000) * stride, stride))
    for start in range(0, len(steps), 1000):
        client.log_batch(run.info.run_id, [Metric("loss", 1 / (s + 1), now + s, s) for s in steps[start:start + 1000]])
    url = server.url + "/api/2.0/mlflow/metrics/get-history-bulk-interval"
    for max_results in (1000, 7):
        got = requests.get(url, params={"run_ids": run.info.run_id, "metric_key": "loss", "max_results": max_results},
                           timeout=30).json()["metrics"]
        assert [p["step"] for p in got] == sample_steps(steps, max_results)
    ranged = requests.get(url, params={"run_ids": run.info.run_id, "metric_key": "loss", "max_results": 10,
                                       "start_step": steps[100], "end_step": steps[-100]}, timeout=30).json()["metrics"]
    inside = [s for s in steps if steps[100] <= s <= steps[-100]]
    ranged_steps = [p["step"] for p in ranged]
    assert (ranged_steps[0], ranged_steps[-1], len(ranged_steps)) == (inside[0], inside[-1], 10)
