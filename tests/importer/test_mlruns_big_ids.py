"""An ./mlruns folder's 18-digit experiment ids survive the import into every database.

MLflow's file store numbers experiments with 18-digit ids, past a 32-bit column (revision 0007
made them 64-bit). The folder is written by the real client; the import goes into SQLite,
PostgreSQL and MariaDB; the official client then reads the experiment, its runs and histories
back from `trackgate server` by that id, and a new experiment is numbered after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from tests.importer.processes import run_import
from tests.server_process import trackgate_server
from tests.services import throwaway_mariadb, throwaway_postgres

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _target(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "postgresql":
        with throwaway_postgres() as uri:
            yield uri
    elif backend == "mariadb":
        with throwaway_mariadb() as uri:
            yield uri
    else:
        yield f"sqlite:///{tmp_path}/trackgate.db"


def _view(client: MlflowClient, experiment_id: str) -> dict[str, object]:
    experiment = client.get_experiment(experiment_id)
    runs = client.search_runs([experiment_id], run_view_type=ViewType.ALL)
    return {
        "experiment": (experiment.experiment_id, experiment.name, experiment.tags, experiment.lifecycle_stage),
        "by_name": client.get_experiment_by_name(experiment.name).experiment_id,  # type: ignore[union-attr]
        "runs": sorted(
            (
                r.info.run_id,
                r.info.experiment_id,
                r.info.run_name,
                r.data.params,
                [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, "loss")],
            )
            for r in runs
        ),
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_18_digit_experiment_ids_import_and_read_back(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "mlruns"
    client = MlflowClient(f"file://{store}")
    experiment_id = client.create_experiment("wide", tags={"team": "a"})
    assert len(experiment_id) == 18 and int(experiment_id) > 2**31
    for name in ("first", "second"):
        run = client.create_run(experiment_id, run_name=name).info.run_id
        client.log_param(run, "lr", "0.1")
        for step in range(5):
            client.log_metric(run, "loss", 1.0 / (step + 1), step=step)
    expected = _view(client, experiment_id)

    with _target(backend, tmp_path) as target:
        done = run_import(str(store), target)
        assert done.returncode == 0, done.stderr
        with trackgate_server(tmp_path / "trackgate", "--backend-store-uri", target) as server:
            served = MlflowClient(server.url)
            assert _view(served, experiment_id) == expected
            created = served.create_experiment("after-import")
            assert int(created) == int(experiment_id) + 1
            run = served.create_run(experiment_id).info
            assert run.experiment_id == experiment_id
