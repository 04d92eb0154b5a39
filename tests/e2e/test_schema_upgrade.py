"""An out-of-date database: the server refuses with the exact command, which then upgrades it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow


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
    engine.dispose()
    return uri


def test_refuse_then_upgrade_keeps_data(tmp_path: Path) -> None:
    uri = _database_at_first_revision(tmp_path / "old.db")
    refused = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "server", "--port", "0", "--backend-store-uri", uri],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert refused.returncode != 0
    assert f"trackgate db upgrade {uri}" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr

    upgraded = subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade", uri],
                              capture_output=True, text=True, timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Upgraded" in upgraded.stdout
    again = subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade", uri],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already at" in again.stdout

    with trackgate_server(tmp_path / "srv", "--backend-store-uri", uri) as server:
        kept = requests.get(server.url + "/api/2.0/mlflow/experiments/get", params={"experiment_id": "7"}, timeout=10)
        assert kept.json()["experiment"]["name"] == "kept"
        models = requests.get(server.url + "/api/2.0/mlflow/registered-models/search", timeout=10)
        assert models.status_code == 200
