"""`trackgate import-mlflow` from PostgreSQL and MariaDB databases that MLflow itself set up.

Each source is a new database migrated by `mlflow db upgrade`, then filled by the real client with
that tracking URI; the import goes into a new trackgate database on the same server, and the
official client reads both back (`mlflow server` on the source, `trackgate server` on the result).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.importer.compare import differences, snapshot
from tests.importer.mlflow_data import HISTORY_POINTS, populate
from tests.importer.processes import import_env, mlflow_server, run_import
from tests.server_process import trackgate_server
from tests.services import throwaway_mariadb, throwaway_postgres

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def databases(backend: str) -> Iterator[tuple[str, str]]:
    """(source URI as mlflow's synchronous drivers take it, target URI as a trackgate user writes it)."""
    if backend == "postgresql":
        with throwaway_postgres() as source, throwaway_postgres() as target:
            yield source, target
        return
    with throwaway_mariadb() as source, throwaway_mariadb() as target:
        yield source.replace("mysql://", "mysql+pymysql://", 1), target


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_server_database_imports_identical(backend: str, tmp_path: Path) -> None:
    with databases(backend) as (source, target):
        upgraded = subprocess.run(
            [sys.executable, "-m", "mlflow", "db", "upgrade", source],
            capture_output=True,
            text=True,
            env=import_env(),
            timeout=600,
        )
        assert upgraded.returncode == 0, upgraded.stderr
        populate(source)
        with mlflow_server(source, tmp_path) as source_server:
            done = run_import(source, target, "--batch-size", "500")
            assert done.returncode == 0, done.stderr
            assert f"metrics: {HISTORY_POINTS + 7:,}" in done.stdout
            with trackgate_server(tmp_path / "trackgate", "--backend-store-uri", target) as server:
                actual = snapshot(MlflowClient(server.url))
                assert MlflowClient(server.url).create_experiment("after-import") == str(
                    max(int(e) for e in actual["experiments"]) + 1  # type: ignore[attr-defined]
                ), "new experiment ids continue after the imported ones"
            expected = snapshot(MlflowClient(source_server.url()))
        assert differences(expected, actual) == []
        again = run_import(source, target)
        assert again.returncode == 0, again.stderr
