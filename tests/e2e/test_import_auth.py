"""`--auth-db`: MLflow's basic-auth users log in to trackgate with their old passwords, and their
permissions hold as grants.

The auth database is written by MLflow's own basic-auth store (mlflow.server.auth's
SqlAlchemyStore, what `mlflow server --app-name basic-auth` runs on), its hashes by werkzeug.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

from tests.importer.processes import run_import
from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow

ALICE_PASSWORD = "alice-old-password"
ROOT_PASSWORD = "root-old-password"


def _sources(tmp_path: Path) -> tuple[str, str]:
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking)
    editable = client.create_experiment("alice-edits")  # 1
    client.create_experiment("read-only-for-alice")  # 2
    client.create_experiment("hidden-from-alice")  # 3
    auth = f"sqlite:///{tmp_path}/basic_auth.db"
    store = SqlAlchemyStore()
    store.init_db(auth)
    store.create_user("alice", ALICE_PASSWORD)
    store.create_user("root", ROOT_PASSWORD, is_admin=True)
    store.create_experiment_permission(editable, "alice", "EDIT")
    store.create_experiment_permission("3", "alice", "DENY")
    return tracking, auth


def _client(url: str, user: str, password: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return MlflowClient(url)


def test_users_log_in_with_old_passwords_and_keep_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tracking, auth = _sources(tmp_path)
    target = f"sqlite:///{tmp_path}/trackgate.db"
    done = run_import(tracking, target, "--auth-db", auth)
    assert done.returncode == 0, done.stderr
    assert "users: 2" in done.stdout and "experiment permissions: 2" in done.stdout

    with trackgate_server(tmp_path / "srv", "--backend-store-uri", target, "--auth", "basic") as server:
        alice = _client(server.url, "alice", ALICE_PASSWORD, monkeypatch)
        run = alice.create_run("1")  # EDIT on experiment 1
        alice.log_metric(run.info.run_id, "loss", 0.5)
        assert alice.get_experiment("2").name == "read-only-for-alice"  # the default READ
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|403"):
            alice.create_run("2")
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|403"):
            alice.get_experiment("3")  # a DENY grant
        with pytest.raises(MlflowException, match=r"401|nauthenticated|Invalid username"):
            _client(server.url, "alice", "wrong-password!", monkeypatch).get_experiment("1")
        root = _client(server.url, "root", ROOT_PASSWORD, monkeypatch)
        assert root.get_experiment("3").name == "hidden-from-alice"
        root.create_experiment("made-by-admin")


def test_existing_user_with_another_password_is_refused(tmp_path: Path) -> None:
    tracking, auth = _sources(tmp_path)
    target = f"sqlite:///{tmp_path}/trackgate.db"
    assert run_import(tracking, target, "--auth-db", auth).returncode == 0
    assert run_import(tracking, target, "--auth-db", auth).returncode == 0  # the same users again: fine
    other = f"sqlite:///{tmp_path}/other_auth.db"
    store = SqlAlchemyStore()
    store.init_db(other)
    store.create_user("alice", "yet-another-password")
    refused = run_import(tracking, target, "--auth-db", other)
    assert refused.returncode == 1
    assert "users named alice with other passwords" in refused.stderr
