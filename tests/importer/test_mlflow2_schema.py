"""Databases in the shape MLflow 2.x left them: made by MLflow's own migrations, stopped at a 2.x
revision, then imported and read back through the official client.

The installed `mlflow` (3.x) will not write into an old schema, so the rows are written with
plain SQL in the columns that revision has, as MLflow 2.x wrote them (NaN as 0 with is_nan, ±inf
as the largest doubles, a deleted model version under the internal stage).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from mlflow import MlflowClient
from mlflow.store.db.utils import _get_alembic_config
from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

from tests.importer.processes import run_import
from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow

RUN = "0123456789abcdef0123456789abcdef"
CHILD = "fedcba9876543210fedcba9876543210"
MAX = sys.float_info.max

# (revision, what it is): MLflow 2.8's storage_location (last 2.x registry change before the
# trace tables), and the last revision MLflow 2.x made (cascading dataset deletion, 2.18-2.22).
REVISIONS = {"acf3f17fdcc7": "MLflow 2.8", "0584bdc529eb": "MLflow 2.18-2.22"}


def _mlflow2_database(path: Path, revision: str) -> str:
    uri = f"sqlite:///{path}"
    engine = sa.create_engine(uri)
    InitialBase.metadata.create_all(engine)
    config = _get_alembic_config(uri)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    statements = [
        "INSERT INTO experiments VALUES (0, 'Default', './mlruns/0', 'active', 1000, 1000)",
        "INSERT INTO experiments VALUES (4, 'old-team', 's3://bucket/4', 'active', 1100, 1200)",
        "INSERT INTO experiment_tags VALUES ('owner', 'ana', 4)",
        f"INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
        f"end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) VALUES "
        f"('{RUN}', 'parent', 'LOCAL', '', '', 'ana', 'FINISHED', 2000, 3000, '', 'active', "
        f"'s3://bucket/4/{RUN}/artifacts', 4, NULL)",
        f"INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
        f"end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) VALUES "
        f"('{CHILD}', 'child', 'LOCAL', '', '', 'ana', 'FAILED', 2100, 2200, '', 'deleted', "
        f"'s3://bucket/4/{CHILD}/artifacts', 4, 2300)",
        f"INSERT INTO tags VALUES ('mlflow.parentRunId', '{RUN}', '{CHILD}')",
        f"INSERT INTO tags VALUES ('mlflow.runName', 'parent', '{RUN}')",
        f"INSERT INTO params VALUES ('lr', '0.01', '{RUN}')",
        f"INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES ('loss', 0.5, 10, '{RUN}', 0, 0)",
        f"INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES ('loss', 0, 11, '{RUN}', 1, 1)",
        f"INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
        f"VALUES ('loss', {MAX!r}, 12, '{RUN}', 2, 0)",
        f"INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
        f"VALUES ('loss', {MAX!r}, 12, 2, 0, '{RUN}')",
        "INSERT INTO registered_models VALUES ('churn', 1500, 1600, 'predicts churn')",
        "INSERT INTO registered_model_tags VALUES ('team', 'growth', 'churn')",
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, "
        "current_stage, source, run_id, status, status_message, run_link, storage_location) VALUES "
        f"('churn', 1, 1510, 1520, 'first', 'ana', 'Production', 's3://bucket/4/{RUN}/artifacts/model', "
        f"'{RUN}', 'READY', NULL, '', 's3://bucket/4/{RUN}/artifacts/model')",
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, "
        "current_stage, source, run_id, status, status_message, run_link, storage_location) VALUES "
        "('churn', 2, 1530, 1540, '', 'ana', 'Deleted_Internal', 's3://x', NULL, 'READY', NULL, '', 's3://x')",
        "INSERT INTO model_version_tags VALUES ('validated', 'yes', 'churn', 1)",
        "INSERT INTO registered_model_aliases VALUES ('champion', 1, 'churn')",
        "INSERT INTO datasets VALUES ('d1', 4, 'train', 'abc123', 'local', '{\"uri\": \"/data\"}', NULL, NULL)",
        f"INSERT INTO inputs VALUES ('i1', 'DATASET', 'd1', 'RUN', '{RUN}')",
        "INSERT INTO input_tags VALUES ('i1', 'mlflow.data.context', 'training')",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()
    return uri


@pytest.mark.parametrize("revision", list(REVISIONS), ids=list(REVISIONS.values()))
def test_mlflow2_database_imports_and_reads_back(revision: str, tmp_path: Path) -> None:
    source = _mlflow2_database(tmp_path / "mlflow2.db", revision)
    target = f"sqlite:///{tmp_path}/trackgate.db"
    done = run_import(source, target)
    assert done.returncode == 0, done.stderr
    assert f"MLflow schema {revision}" in done.stdout
    with trackgate_server(tmp_path / "srv", "--backend-store-uri", target) as server:
        client = MlflowClient(server.url)
        experiment = client.get_experiment("4")
        assert (experiment.name, experiment.artifact_location, experiment.tags) == (
            "old-team",
            "s3://bucket/4",
            {"owner": "ana"},
        )
        assert (experiment.creation_time, experiment.last_update_time) == (1100, 1200)
        run = client.get_run(RUN)
        assert (run.info.status, run.info.start_time, run.info.end_time, run.info.user_id) == (
            "FINISHED",
            2000,
            3000,
            "ana",
        )
        assert run.data.params == {"lr": "0.01"}
        history = sorted((m.step, m.value) for m in client.get_metric_history(RUN, "loss"))
        assert history[0] == (0, 0.5) and math.isnan(history[1][1]) and history[2] == (2, MAX)
        child = client.get_run(CHILD)
        assert (child.info.lifecycle_stage, child.data.tags["mlflow.parentRunId"]) == ("deleted", RUN)
        assert [(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs] == [("train", "abc123")]
        model = client.get_registered_model("churn")
        assert (model.description, model.tags, model.aliases) == (
            "predicts churn",
            {"team": "growth"},
            {"champion": "1"},
        )
        version = client.get_model_version_by_alias("churn", "champion")
        assert (version.version, version.current_stage, version.tags) == ("1", "Production", {"validated": "yes"})
        assert [v.version for v in client.search_model_versions("name = 'churn'")] == ["1"]  # 2 was deleted
