"""A staged move: import, let MLflow keep working, import again; the second import catches up.

Between the two imports the real `mlflow` client goes on writing the source: more points in every
already-imported run (the one with the smallest id too, which an import resuming "from the last
run it wrote" would never revisit), a run finished, a tag changed, the experiment renamed, a new
run with its history, a new registered model version. Then everything the official client reads
from `trackgate server` on the target must match what it reads from the source.

Three paths: SQLite to SQLite (SQLite's own INSERT ... SELECT), PostgreSQL to PostgreSQL (the
COPY pipe) and ./mlruns to SQLite (batches through Python).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from tests.importer.processes import run_import
from tests.server_process import trackgate_server
from tests.services import throwaway_postgres

pytestmark = pytest.mark.slow

RUNS, POINTS = 5, 60


@contextlib.contextmanager
def _databases(kind: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(source URI for the mlflow client, the same for `--from`, target URI)."""
    if kind == "postgresql":
        with throwaway_postgres() as source, throwaway_postgres() as target:
            yield source, target
    elif kind == "mlruns":
        yield f"file://{tmp_path}/mlruns", f"sqlite:///{tmp_path}/trackgate.db"
    else:
        yield f"sqlite:///{tmp_path}/mlflow.db", f"sqlite:///{tmp_path}/trackgate.db"


def _log(client: MlflowClient, run_id: str, first_step: int, count: int) -> None:
    client.log_batch(
        run_id,
        metrics=[Metric("loss", 1.0 / (step + 1), 1_000 + step, step) for step in range(first_step, first_step + count)]
        + [Metric("acc", step / 100, 1_000 + step, step) for step in range(first_step, first_step + count)],
    )


def _view(client: MlflowClient, experiment_id: str) -> dict[str, object]:
    """What a user sees: the experiment, each run's info, params, tags and full histories, the registry."""
    runs = {}
    for run in client.search_runs([experiment_id], max_results=100):
        histories = {
            key: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, key))
            for key in run.data.metrics
        }
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.source")}
        runs[run.info.run_id] = (run.info.status, run.info.end_time, run.data.params, tags, histories)
    versions = sorted((v.name, str(v.version), v.run_id) for v in client.search_model_versions())
    return {"experiment": client.get_experiment(experiment_id).name, "runs": runs, "versions": versions}


def _import(source: str, target: str) -> str:
    done = run_import(source, target, "--batch-size", "50")
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mlruns"])
def test_second_import_catches_up_with_what_mlflow_wrote_since(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with _databases(kind, tmp_path) as (source, target):
        client = MlflowClient(source)
        experiment = client.create_experiment("staged")
        run_ids = sorted(client.create_run(experiment, run_name=f"r{i}").info.run_id for i in range(RUNS))
        for run_id in run_ids:
            _log(client, run_id, 0, POINTS)
            client.log_param(run_id, "lr", "0.1")
            client.set_tag(run_id, "phase", "one")
        client.create_registered_model("m")
        client.create_model_version("m", "s3://bucket/m1", run_id=run_ids[0])
        first = _import(source.removeprefix("file://"), target)
        assert f"metrics: {RUNS * POINTS * 2:,}" in first

        # MLflow goes on: every imported run grows, the first (smallest id) too.
        for run_id in run_ids:
            _log(client, run_id, POINTS, 7)
        client.set_terminated(run_ids[0], "FINISHED")
        client.set_tag(run_ids[1], "phase", "two")
        client.rename_experiment(experiment, "staged-renamed")
        late = client.create_run(experiment, run_name="late").info.run_id
        _log(client, late, 0, POINTS)
        client.create_model_version("m", "s3://bucket/m2", run_id=late)

        planned = run_import(source.removeprefix("file://"), target, "--dry-run")
        assert planned.returncode == 0, planned.stderr
        assert f"0 runs complete already, {RUNS} to resume or catch up, 1 to copy" in planned.stdout, planned.stdout
        second = _import(source.removeprefix("file://"), target)
        caught_up = re.search(r"(\d+) runs complete already, (\d+) resumed or caught up, (\d+) copied", second)
        assert caught_up, second
        assert caught_up.groups() == ("0", str(RUNS), "1"), second
        third = _import(source.removeprefix("file://"), target)  # nothing new: everything complete
        assert f"{RUNS + 1} runs complete already, 0 resumed or caught up, 0 copied" in third, third

        expected = _view(client, experiment)
        with trackgate_server(tmp_path / "trackgate", "--backend-store-uri", target) as server:
            actual = _view(MlflowClient(server.url), experiment)
    assert actual == expected
    assert len(actual["runs"]) == RUNS + 1  # type: ignore[arg-type]
