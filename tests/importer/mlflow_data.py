"""Source data for import tests, written by the real `mlflow` package into its own store.

`populate(uri)` logs what a team's `mlflow server` accumulates: experiments (one deleted, tagged,
with their own artifact locations), runs (nested, failed, deleted), params, tags, metric histories
with NaN and infinities, datasets with contexts, logged models with params, metrics and tags, and
a registry with versions, stages, aliases, tags and a deleted version.
"""

from __future__ import annotations

import math
import warnings

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

HISTORY_POINTS = 1_500  # more than one batch at the tests' --batch-size


def populate(uri: str) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # stages are deprecated, still used
    warnings.filterwarnings("ignore", category=UserWarning)
    client = MlflowClient(uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        _tracking(client)
        _registry(client)
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(previous)


def _tracking(client: MlflowClient) -> None:
    vision = client.create_experiment("vision", artifact_location="s3://team-bucket/vision", tags={"team": "cv"})
    nlp = client.create_experiment("nlp", tags={"team": "nlp", "mlflow.note.content": "notes"})
    old = client.create_experiment("old-experiment")
    client.create_run(old, run_name="in-deleted-experiment")
    client.delete_experiment(old)

    run = client.create_run(vision, run_name="resnet", tags={"stage": "train"})
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(HISTORY_POINTS)],
        params=[Param("lr", "0.01"), Param("layers", "50"), Param("long", "x" * 6000)],
        tags=[RunTag("mlflow.user", "alice"), RunTag("note", "ü ✓")],
    )
    # Distinct timestamps: four calls can land in one millisecond, and which of several points tied on
    # (step, timestamp) is the "latest" differs between MLflow's file store and its SQL stores.
    for k, value in enumerate((math.nan, math.inf, -math.inf, -0.5)):
        client.log_metric(run.info.run_id, "odd", value, timestamp=1_700_000_100_000 + k, step=3)
    client.set_terminated(run.info.run_id, "FINISHED")

    failed = client.create_run(vision, run_name="failed-one")
    client.log_metric(failed.info.run_id, "loss", 9.0)
    client.set_terminated(failed.info.run_id, "FAILED")
    deleted = client.create_run(nlp, run_name="deleted-one")
    client.delete_run(deleted.info.run_id)

    with mlflow.start_run(experiment_id=nlp, run_name="parent") as parent:
        frame = pd.DataFrame({"text": ["a", "b"], "label": [0.0, 1.0]})
        train = mlflow.data.from_pandas(frame, name="reviews", targets="label")
        mlflow.log_input(train, context="training", tags={"split": "train"})
        mlflow.log_input(mlflow.data.from_pandas(frame.head(1), name="reviews-eval"), context="eval")
        # Experiment named on every fluent call: mlflow's process-wide active experiment may have been set
        # by an earlier test, and a file store has no experiment "1" to fall back on.
        with mlflow.start_run(experiment_id=nlp, nested=True, run_name="child"):
            mlflow.log_param("fold", "1")
            mlflow.log_metric("f1", 0.7, step=1)
        model = mlflow.initialize_logged_model(
            experiment_id=nlp,
            name="sentiment",
            params={"threshold": "0.5"},
            tags={"kind": "baseline"},
            model_type="classifier",
        )
        mlflow.log_metric("accuracy", 0.91, step=2, model_id=model.model_id, dataset=train)
        client.finalize_logged_model(model.model_id, "READY")
        client.set_logged_model_tags(model.model_id, {"reviewed": "yes"})
        _ = parent


def _registry(client: MlflowClient) -> None:
    runs = client.search_runs(client.get_experiment_by_name("vision").experiment_id, "attributes.run_name = 'resnet'")
    run_id = runs[0].info.run_id
    client.create_registered_model("classifier", tags={"owner": "cv"}, description="image classifier")
    for _ in range(3):
        client.create_model_version("classifier", f"runs:/{run_id}/model", run_id, tags={"framework": "torch"})
    client.transition_model_version_stage("classifier", "1", "Archived")
    client.transition_model_version_stage("classifier", "2", "Production")
    client.set_registered_model_alias("classifier", "champion", "2")
    client.set_registered_model_alias("classifier", "challenger", "3")
    client.set_model_version_tag("classifier", "3", "validated", "false")
    client.update_model_version("classifier", "3", description="candidate")
    client.delete_model_version("classifier", "1")
    client.create_registered_model("empty-model")
