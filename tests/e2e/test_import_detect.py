"""Pointed at MLflow's own store, `trackgate server` and `db upgrade` say what it is and print the
import command, instead of advising an upgrade that cannot work (issue 14, item 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.importer.processes import import_env

pytestmark = pytest.mark.slow


def trackgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env=import_env(),
        cwd=cwd,
        timeout=300,
    )


def test_mlflow_database_named_with_the_import_command(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).create_experiment("e")
    for args in (["db", "upgrade", uri], ["server", "--port", "0", "--backend-store-uri", uri]):
        refused = trackgate(*args, cwd=tmp_path)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert "is an MLflow tracking database" in output
        assert f"trackgate import-mlflow --from {uri} --to sqlite:///trackgate.db" in output
        assert "db upgrade" not in output.replace(" ".join(args), "")  # never advised
        assert "Traceback" not in output


def test_mlruns_folder_named_with_the_import_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    MlflowClient(f"file://{tmp_path}/mlruns").create_experiment("e")
    for value in ("./mlruns", "file:./mlruns"):
        refused = trackgate("server", "--backend-store-uri", value, "--check-config", cwd=tmp_path)
        assert refused.returncode == 2
        assert "is an MLflow file store" in refused.stderr
        assert "trackgate import-mlflow --from ./mlruns --to sqlite:///trackgate.db" in refused.stderr
