"""An import killed halfway (SIGKILL, no chance to clean up) resumes where it stopped.

SQLite to SQLite takes the bulk path (sqlite_bulk: one transaction per run at --batch-size 200), a
./mlruns source the streamed path (batches through Python), PostgreSQL to PostgreSQL the COPY pipe
(pg_metrics), so every resume path is killed.

The source is an MLflow SQLite store created by the real `mlflow` client; its metric histories are
bulk-inserted into MLflow's own `metrics` table (logging 200,000 points through the client would
take minutes), which is the shape MLflow writes them in.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow import MlflowClient

from tests.importer.processes import import_argv, import_env, run_import
from tests.services import throwaway_postgres

pytestmark = pytest.mark.slow

RUNS, POINTS_PER_RUN = 40, 10_000


def _file_store(root: Path) -> str:
    """Runs made by the client on its file store, their metric files then written at length in
    FileStore's own line format ("timestamp value step")."""
    client = MlflowClient(f"file://{root}")
    experiment = client.create_experiment("big")
    for i in range(RUNS):
        run = client.create_run(experiment, run_name=f"r{i}")
        metrics = root / experiment / run.info.run_id / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        for key in ("loss", "acc"):
            lines = (f"{1_000 + step} {step * 0.5} {step}\n" for step in range(POINTS_PER_RUN // 2))
            (metrics / key).write_text("".join(lines))
    return str(root)


def _source(path: Path) -> str:
    uri = f"sqlite:///{path}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("big")
    run_ids = [client.create_run(experiment, run_name=f"r{i}").info.run_id for i in range(RUNS)]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
            (
                (key, step * 0.5, 1_000 + step, run, step)
                for run in run_ids
                for key in ("loss", "acc")
                for step in range(POINTS_PER_RUN // 2)
            ),
        )
    return uri


def _points(path: Path, run_column: str) -> set[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return set(db.execute(f"SELECT {run_column}, key, step, timestamp, value, is_nan FROM metrics"))


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM metrics").fetchone()[0])
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def _postgres_count(uri: str) -> Callable[[], int]:
    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)

    def count() -> int:
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql("SELECT count(*) FROM metrics").scalar() or 0)
        except sa.exc.ProgrammingError:  # schema not created yet
            return 0

    return count


def _kill_midway(source: str, target: str, count: Callable[[], int]) -> int:
    process = subprocess.Popen(
        import_argv(source, target, "--batch-size", "200", "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=import_env(),
    )
    deadline = time.monotonic() + 300
    while count() == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the import finished before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return count()


def _resume_and_check(source: str, target: str, count: Callable[[], int]) -> None:
    resumed = run_import(source, target, "--batch-size", "200")
    assert resumed.returncode == 0, resumed.stderr
    # The runs committed before the kill are skipped as complete; an interrupted one is either
    # topped up (streamed path: committed batch by batch) or copied anew (whole-run transactions).
    found = re.search(r"metric histories: (\d+) runs complete already, (\d+) resumed", resumed.stdout)
    assert found and int(found[1]) + int(found[2]) > 0, resumed.stdout
    assert count() == RUNS * POINTS_PER_RUN
    again = run_import(source, target)
    assert again.returncode == 0, again.stderr
    assert count() == RUNS * POINTS_PER_RUN


def test_killed_import_resumes_without_duplicates(tmp_path: Path) -> None:
    source_path, target_path = tmp_path / "mlflow.db", tmp_path / "trackgate.db"
    source, target = _source(source_path), f"sqlite:///{target_path}"
    count = functools.partial(_count, target_path)
    assert 0 < _kill_midway(source, target, count) < RUNS * POINTS_PER_RUN
    _resume_and_check(source, target, count)
    assert _points(target_path, "run_id") == _points(source_path, "run_uuid")


def test_killed_file_store_import_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The streamed path, through Python batches."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    source, target = _file_store(tmp_path / "mlruns"), f"sqlite:///{tmp_path}/trackgate.db"
    count = functools.partial(_count, tmp_path / "trackgate.db")
    assert 0 < _kill_midway(source, target, count) < RUNS * POINTS_PER_RUN
    _resume_and_check(source, target, count)


def test_killed_postgresql_import_resumes() -> None:
    """PostgreSQL to PostgreSQL: the COPY pipe, both ways (runs without points straight in; the
    interrupted run through the duplicate-skipping temp table)."""
    from bench.bench_import import build_source  # the bench's bulk builder: client-made runs, COPied points

    with throwaway_postgres() as source, throwaway_postgres() as target:
        build_source(source, RUNS * POINTS_PER_RUN)
        count = _postgres_count(target)
        assert 0 < _kill_midway(source, target, count) < RUNS * POINTS_PER_RUN
        _resume_and_check(source, target, count)
