"""16 clients logging at once on SQLite: no errors, every value stored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

CLIENTS = 16
POINTS = 40


def test_sixteen_clients_on_one_run_and_on_their_own(tracking: str) -> None:
    setup = MlflowClient()
    experiment_id = setup.create_experiment("concurrency")
    shared = setup.create_run(experiment_id).info.run_id

    def worker(n: int) -> str:
        client = MlflowClient()  # each thread its own client and connection pool, as separate jobs would
        own = client.create_run(experiment_id, run_name=f"worker-{n}").info.run_id
        for step in range(POINTS):
            client.log_metric(shared, f"w{n}", float(step), timestamp=1000 + step, step=step)
            client.log_metric(own, "loss", float(step), timestamp=1000 + step, step=step)
            if step % 10 == 0:
                client.log_batch(own, metrics=[Metric("batch", float(step + i), 1000 + step, step + i)
                                               for i in range(10)])
                client.log_param(own, f"p{step}", str(step))
                client.set_tag(shared, f"tag-{n}", str(step))
        client.set_terminated(own)
        return own

    with ThreadPoolExecutor(CLIENTS) as pool:
        own_runs = list(pool.map(worker, range(CLIENTS)))

    client = MlflowClient()
    shared_run = client.get_run(shared)
    for n in range(CLIENTS):
        assert [m.step for m in client.get_metric_history(shared, f"w{n}")] == list(range(POINTS))
        assert shared_run.data.tags[f"tag-{n}"] == str(POINTS - 10)
    for run_id in own_runs:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run_id, "loss")) == POINTS
        assert len(client.get_metric_history(run_id, "batch")) == POINTS
        assert len(run.data.params) == POINTS // 10
    assert len(client.search_runs([experiment_id], max_results=100)) == CLIENTS + 1
