"""The official mlflow client, unchanged, against `trackgate server` through its gateway."""

from __future__ import annotations

import math
import uuid

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_training_script_flow(tracking: str) -> None:
    experiment = mlflow.set_experiment(unique("train"))
    assert experiment.experiment_id != "0"
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 3, "optimizer": "adam"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        mlflow.log_metric("weird", float("nan"))
        mlflow.log_metric("huge", float("inf"))
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"team": "ml", "owner": "alice"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 1.5)
    client = MlflowClient()
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED" and finished.info.end_time is not None
    assert finished.info.run_name == "baseline"
    assert finished.data.params == {"lr": "0.01", "epochs": "3", "optimizer": "adam"}
    assert finished.data.metrics["loss"] == pytest.approx(1 / 3)
    assert math.isnan(finished.data.metrics["weird"])
    assert finished.data.metrics["huge"] > 1e308
    assert {"stage": "dev", "team": "ml", "owner": "alice"}.items() <= finished.data.tags.items()
    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == run.info.run_id
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]


def test_log_batch_and_long_history(tracking: str) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(unique("batch"))
    run = client.create_run(experiment_id)
    ts = 1_700_000_000_000
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("m", float(i), ts + i, i) for i in range(1000)],
        params=[Param(f"p{i}", str(i)) for i in range(100)],
        tags=[RunTag("t", "v")],
    )
    # More points than one page of the client's history paging (25,000).
    for start in range(0, 30_000, 1000):
        client.log_batch(run.info.run_id, metrics=[Metric("long", float(i), ts + i, i)
                                                   for i in range(start, start + 1000)])
    assert len(client.get_metric_history(run.info.run_id, "m")) == 1000
    long_history = client.get_metric_history(run.info.run_id, "long")
    assert [m.step for m in long_history] == list(range(30_000))
    assert len(client.get_run(run.info.run_id).data.params) == 100


def test_log_input_dataset(tracking: str) -> None:
    mlflow.set_experiment(unique("datasets"))
    df = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(df, source="/data/toy.csv", name="toy")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    inputs = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "toy" and inputs[0].dataset.digest == dataset.digest
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training"}
    found = mlflow.search_runs(experiment_ids=[run.info.experiment_id],
                               filter_string="datasets.name = 'toy' and datasets.context = 'training'",
                               output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_search_runs_dataframe_and_list(tracking: str) -> None:
    experiment = mlflow.set_experiment(unique("search"))
    ids = {}
    for lr, acc in [("0.1", 0.5), ("0.01", 0.9), ("0.001", 0.7)]:
        with mlflow.start_run(run_name=f"lr-{lr}") as run:
            mlflow.log_param("lr", lr)
            mlflow.log_metric("acc", acc)
            ids[lr] = run.info.run_id
    df = mlflow.search_runs(experiment_names=[experiment.name], filter_string="metrics.acc > 0.6",
                            order_by=["metrics.acc DESC"])
    assert list(df["run_id"]) == [ids["0.01"], ids["0.001"]]
    assert list(df["params.lr"]) == ["0.01", "0.001"]
    runs = mlflow.search_runs(experiment_ids=[experiment.experiment_id], filter_string="params.lr = '0.1'",
                              output_format="list")
    assert [r.info.run_id for r in runs] == [ids["0.1"]]
    by_name = mlflow.search_runs(experiment_ids=[experiment.experiment_id],
                                 filter_string="attributes.run_name LIKE 'lr-0.0%'", output_format="list")
    assert {r.info.run_id for r in by_name} == {ids["0.01"], ids["0.001"]}
    paged = MlflowClient().search_runs([experiment.experiment_id], max_results=2)
    assert len(paged) == 2 and paged.token
    rest = MlflowClient().search_runs([experiment.experiment_id], max_results=2, page_token=paged.token)
    assert len(rest) == 1 and not rest.token


def test_search_experiments_and_lifecycle(tracking: str) -> None:
    client = MlflowClient()
    name = unique("lifecycle")
    experiment_id = client.create_experiment(name, tags={"team": "ml"})
    assert [e.experiment_id for e in mlflow.search_experiments(filter_string=f"name = '{name}'")] == [experiment_id]
    assert mlflow.search_experiments(filter_string="tags.team = 'ml'")
    client.rename_experiment(experiment_id, name + "-renamed")
    assert client.get_experiment_by_name(name) is None
    assert client.get_experiment_by_name(name + "-renamed").experiment_id == experiment_id
    client.set_experiment_tag(experiment_id, "phase", "2")
    assert client.get_experiment(experiment_id).tags["phase"] == "2"
    run = client.create_run(experiment_id, run_name="to-delete")
    client.set_tag(run.info.run_id, "x", "1")
    client.delete_tag(run.info.run_id, "x")
    client.update_run(run.info.run_id, name="renamed-run")
    assert client.get_run(run.info.run_id).info.run_name == "renamed-run"
    client.delete_run(run.info.run_id)
    assert client.search_runs([experiment_id]) == []
    assert [r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)] == [
        run.info.run_id
    ]
    client.restore_run(run.info.run_id)
    assert len(client.search_runs([experiment_id])) == 1
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert experiment_id not in [e.experiment_id for e in client.search_experiments()]
    assert experiment_id in [e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_client_sees_mlflow_errors(tracking: str) -> None:
    client = MlflowClient()
    name = unique("errors")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as exc:
        client.create_experiment(name)
    assert exc.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as exc:
        client.get_run("f" * 32)
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    run = client.create_run(client.get_experiment_by_name(name).experiment_id)
    client.log_param(run.info.run_id, "lr", "1")
    with pytest.raises(MlflowException) as exc:
        client.log_param(run.info.run_id, "lr", "2")
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"


def test_version_matches_the_client(tracking: str) -> None:
    import requests

    response = requests.get(tracking + "/version", timeout=5)
    assert response.status_code == 200
    assert response.text == mlflow.__version__
    info = requests.get(tracking + "/api/3.0/mlflow/server-info", timeout=5).json()
    assert info["store_type"] == "SqlStore"
    assert requests.get(tracking + "/health", timeout=5).text == "OK"
