"""An out-of-date database: the server waits, not ready, naming the exact command, which then upgrades it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from gateway.supervisor import SCHEMA_POLL_INTERVAL
from tests.server_process import trackgate_server, wait_ready

pytestmark = pytest.mark.slow


KEPT_RUN = "ab" * 16


def _database_at_first_revision(path: Path) -> str:
    uri = f"sqlite:///{path}"
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "tracking_core.store:migrations")
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
            "last_update_time) VALUES (7, 'kept', 'mlflow-artifacts:/7', 'active', 1, 1)"
        )
        # A run with children: revision 0005 rebuilds these tables on SQLite.
        conn.exec_driver_sql(
            f"INSERT INTO runs (run_id, experiment_id, name, user_id, status, start_time, lifecycle_stage, "
            f"artifact_uri) VALUES ('{KEPT_RUN}', 7, 'old-run', 'u', 'FINISHED', 5, 'active', 'mlflow-artifacts:/7/r')"
        )
        conn.exec_driver_sql(f"INSERT INTO params VALUES ('{KEPT_RUN}', 'lr', '0.1')")
        conn.exec_driver_sql(f"INSERT INTO run_tags VALUES ('{KEPT_RUN}', 'team', 'a')")
        for table, step in [("metrics", 0), ("metrics", 1), ("metrics", 2), ("latest_metrics", 2)]:
            conn.exec_driver_sql(
                f"INSERT INTO {table} (run_id, key, step, timestamp, value, is_nan) "
                f"VALUES ('{KEPT_RUN}', 'loss', {step}, {100 + step}, {1.5 - step}, 0)"
            )
    engine.dispose()
    return uri


def test_wait_not_ready_then_upgrade_keeps_data(tmp_path: Path) -> None:
    """A server on an out-of-date database never migrates it: it stays not ready, says once which
    command to run, and becomes ready by itself (same process) once that command has run."""
    uri = _database_at_first_revision(tmp_path / "old.db")
    with trackgate_server(tmp_path / "waiting", "--backend-store-uri", uri, wait=False) as waiting:
        deadline = time.monotonic() + 30
        while f"trackgate db upgrade {uri}" not in waiting.log() and time.monotonic() < deadline:
            assert waiting.process.poll() is None, waiting.log()
            time.sleep(0.1)
        assert f"trackgate db upgrade {uri}" in waiting.log()
        with pytest.raises(requests.ConnectionError):  # the public port stays closed: not ready
            requests.get(waiting.url + "/readyz", timeout=2)
        time.sleep(2 * SCHEMA_POLL_INTERVAL)  # several re-checks, still one line
        assert waiting.log().count("trackgate db upgrade") == 1
        assert "Traceback" not in waiting.log()

        upgraded = subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade", uri],
                                  capture_output=True, text=True, timeout=60)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "Upgraded" in upgraded.stdout
        wait_ready(waiting.url, waiting.process)
        assert waiting.process.poll() is None  # no restart: the same process became ready
    again = subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade", uri],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already at" in again.stdout

    with trackgate_server(tmp_path / "srv", "--backend-store-uri", uri) as server:
        kept = requests.get(server.url + "/api/2.0/mlflow/experiments/get", params={"experiment_id": "7"}, timeout=10)
        assert kept.json()["experiment"]["name"] == "kept"
        models = requests.get(server.url + "/api/2.0/mlflow/registered-models/search", timeout=10)
        assert models.status_code == 200
        run = requests.get(server.url + "/api/2.0/mlflow/runs/get", params={"run_id": KEPT_RUN}, timeout=10).json()
        assert run["run"]["data"]["params"] == [{"key": "lr", "value": "0.1"}]
        assert {"key": "team", "value": "a"} in run["run"]["data"]["tags"]
        assert run["run"]["data"]["metrics"] == [{"key": "loss", "value": -0.5, "timestamp": 102, "step": 2}]
        history = requests.get(server.url + "/api/2.0/mlflow/metrics/get-history",
                               params={"run_id": KEPT_RUN, "metric_key": "loss"}, timeout=10).json()
        assert [(m["step"], m["value"]) for m in history["metrics"]] == [(0, 1.5), (1, 0.5), (2, -0.5)]
    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        definitions = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
    engine.dispose()
    for name in ("metrics", "latest_metrics", "params", "run_tags"):
        assert definitions[name].rstrip().endswith("WITHOUT ROWID"), name
        assert f"CONSTRAINT pk_{name} PRIMARY KEY" in definitions[name]
    assert not any(name.endswith("__clustered") for name in definitions)
