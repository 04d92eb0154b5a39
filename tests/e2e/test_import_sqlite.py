"""`trackgate import-mlflow` from an MLflow SQLite store that the real `mlflow` package wrote.

The expectation is what the official client reads from `mlflow server` on the source; the result
is what it reads from `trackgate server` on the imported database. Then: importing again changes
nothing, a dry run writes nothing, clashing ids are refused with the target untouched, and an
unknown MLflow revision is refused by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from tests.importer.compare import differences, snapshot
from tests.importer.mlflow_data import HISTORY_POINTS, populate
from tests.importer.processes import MlflowServer, mlflow_server, run_import
from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow


def table_dump(uri: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to prove a refused import changed nothing."""
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {n: sorted(map(tuple, conn.exec_driver_sql(f'SELECT * FROM "{n}"')), key=repr) for n in names}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = Path(tmp_path_factory.mktemp("mlflow-source"))
    uri = f"sqlite:///{workdir}/mlflow.db"
    populate(uri)
    return workdir, uri


@pytest.fixture(scope="module")
def source_server(source: tuple[Path, str]) -> Iterator[MlflowServer]:
    with mlflow_server(source[1], source[0]) as server:
        yield server


@pytest.fixture(scope="module")
def imported(
    source: tuple[Path, str], source_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    workdir = Path(tmp_path_factory.mktemp("trackgate-target"))
    target = f"sqlite:///{workdir}/trackgate.db"
    done = run_import(source[1], target, "--batch-size", "500")
    assert done.returncode == 0, done.stderr
    assert f"metrics: {HISTORY_POINTS + 7:,}" in done.stdout
    assert "Traceback" not in done.stderr
    return workdir, target


def read_back(workdir: Path, target: str) -> dict[str, object]:
    with trackgate_server(workdir, "--backend-store-uri", target) as server:
        return snapshot(MlflowClient(server.url))


def test_every_entity_reads_back_identical(source_server: MlflowServer, imported: tuple[Path, str]) -> None:
    actual = read_back(*imported)  # meanwhile `mlflow server` on the source has been starting
    expected = snapshot(MlflowClient(source_server.url()))
    assert differences(expected, actual) == []
    assert len(actual["runs"]) == 6  # type: ignore[arg-type]
    assert actual["logged_models"] and actual["aliases"]


def test_importing_twice_changes_nothing(source: tuple[Path, str], imported: tuple[Path, str]) -> None:
    before = table_dump(imported[1])
    again = run_import(source[1], imported[1], "--batch-size", "500")
    assert again.returncode == 0, again.stderr
    assert table_dump(imported[1]) == before


def test_dry_run_writes_nothing(source: tuple[Path, str], tmp_path: Path) -> None:
    target = tmp_path / "never.db"
    dry = run_import(source[1], f"sqlite:///{target}", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Would import")
    assert "registered models: 2" in dry.stdout
    assert not target.exists()


def test_clashing_ids_refused_and_nothing_changed(source: tuple[Path, str], tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path}/trackgate.db"
    with trackgate_server(tmp_path, "--backend-store-uri", target) as server:
        client = MlflowClient(server.url)
        client.create_experiment("someone-elses")  # id 1, which the source's "vision" has
        client.create_registered_model("classifier")
    before = table_dump(target)
    refused = run_import(source[1], target)
    assert refused.returncode == 1
    assert "experiment 1 exists as 'someone-elses'" in refused.stderr
    assert "registered model 'classifier' exists" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert table_dump(target) == before


def test_dry_run_reports_clashes_too(source: tuple[Path, str], imported: tuple[Path, str], tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    shutil.copy(source[0] / "mlflow.db", other)
    engine = sa.create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        # Another experiment under id 1 (a rename alone is the same experiment, refreshed on import).
        conn.exec_driver_sql(
            "UPDATE experiments SET name = 'renamed', creation_time = creation_time + 1 WHERE experiment_id = 1"
        )
    engine.dispose()
    refused = run_import(f"sqlite:///{other}", imported[1], "--dry-run")
    assert refused.returncode == 1
    assert "experiment 1 exists as 'vision'" in refused.stderr


def test_unknown_mlflow_revision_is_refused_by_name(source: tuple[Path, str], tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    shutil.copy(source[0] / "mlflow.db", newer)
    engine = sa.create_engine(f"sqlite:///{newer}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    engine.dispose()
    refused = run_import(f"sqlite:///{newer}", f"sqlite:///{tmp_path}/t.db")
    assert refused.returncode == 1
    assert "'f00dfeedbeef'" in refused.stderr
    assert not (tmp_path / "t.db").exists()
