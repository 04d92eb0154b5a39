"""Authorization through `trackgate server --auth basic,bearer` with the official client.

A table of callers (admin, owner, reader, editor, denied, role member, CI token, anonymous) by
endpoint families (experiments, runs, artifacts, registered models and versions), each asserting
allowed or denied, and that every denied write changed nothing. Management goes through MLflow's
own `AuthServiceClient` (users, grants, roles)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from tests.gateway.support import cli
from tests.server_process import RunningServer, trackgate_server

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-pass-1"
CREDENTIAL_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@contextlib.contextmanager
def as_user(name: str | None, token: str | None = None) -> Iterator[None]:
    """The client's credentials come from the environment on every request."""
    saved = {k: os.environ.pop(k, None) for k in CREDENTIAL_ENV}
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    elif name:
        os.environ["MLFLOW_TRACKING_USERNAME"] = name
        os.environ["MLFLOW_TRACKING_PASSWORD"] = PASSWORD
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


@dataclass
class World:
    server: RunningServer
    token: str  # a token trackgate issued to subject ci-deploy
    group_token: str  # a token for sso-carol carrying groups ["team-edit"], as an SSO/JWT caller has
    experiment_id: str
    run_id: str
    model: str

    @property
    def url(self) -> str:
        return self.server.url


def _group_token(db_uri: str) -> str:
    """A bearer token with a `groups` claim, signed with the server's stored key: the caller is a
    member of the role `team-edit` by group alone, as an SSO user of that group is."""
    import jwt
    import sqlalchemy as sa
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    engine = sa.create_engine(db_uri)
    with engine.connect() as conn:
        pem = conn.execute(sa.text("SELECT value FROM gateway_secrets WHERE name = 'token_signing_key'")).scalar_one()
    engine.dispose()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    now = int(time.time())
    claims = {"iss": "trackgate", "aud": "trackgate", "sub": "sso-carol", "groups": ["team-edit"], "iat": now,
              "exp": now + 3600, "jti": "authz-group-token"}
    return jwt.encode(claims, key, algorithm="EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("authz")
    db = f"sqlite:///{d}/trackgate.db"
    made = cli("users", "create", "admin", "--admin", "--backend-store-uri", db, stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    issued = cli("tokens", "issue", "--subject", "ci-deploy", "--ttl", "1d", "--backend-store-uri", db)
    assert issued.returncode == 0, issued.stderr
    with trackgate_server(d, "--backend-store-uri", db, "--auth", "basic,bearer") as server:
        mlflow.set_tracking_uri(server.url)
        auth = get_app_client("basic-auth", tracking_uri=server.url)
        with as_user("admin"):
            for name in ("owner", "reader", "editor", "denied", "member"):
                assert auth.create_user(name, PASSWORD).username == name
        with as_user("owner"):
            client = MlflowClient()
            experiment_id = client.create_experiment("team-exp")
            run_id = client.create_run(experiment_id).info.run_id
            client.log_metric(run_id, "loss", 1.0)
            client.create_registered_model("team-model")
            # The creator holds MANAGE and may grant on what they created.
            auth.grant_user_permission("editor", "experiment", experiment_id, "EDIT")
            auth.grant_user_permission("editor", "registered_model", "team-model", "EDIT")
            auth.grant_user_permission("denied", "experiment", experiment_id, "DENY")
            auth.grant_user_permission("denied", "registered_model", "team-model", "DENY")
            auth.grant_user_permission("ci-deploy", "registered_model", "team-model", "EDIT")
        with as_user("admin"):
            role = auth.create_role("default", "team-edit", "edits the team's work")
            auth.add_role_permission(role.id, "experiment", experiment_id, "EDIT")
            auth.add_role_permission(role.id, "registered_model", "team-model", "EDIT")
            auth.assign_role("member", role.id)
            # A role grant does not lift an explicit DENY.
            auth.assign_role("denied", role.id)
        yield World(server, issued.stdout.strip(), _group_token(db), experiment_id, run_id, "team-model")
        mlflow.set_tracking_uri("")


ALL = {"admin", "owner", "reader", "editor", "denied", "member", "group", "ci", "anonymous"}
EXPERIMENT_READ = ALL - {"denied", "anonymous"}
EXPERIMENT_EDIT = {"admin", "owner", "editor", "member", "group"}
MANAGE = {"admin", "owner"}
MODEL_READ = ALL - {"denied", "anonymous"}
MODEL_EDIT = {"admin", "owner", "editor", "member", "group", "ci"}


def _client_for(world: World, who: str) -> contextlib.AbstractContextManager[None]:
    if who == "ci":
        return as_user(None, world.token)
    if who == "group":
        return as_user(None, world.group_token)
    return as_user(None if who == "anonymous" else who)


def _metric_count(w: World) -> int:
    with as_user("admin"):
        return len(MlflowClient().get_metric_history(w.run_id, "loss"))


def _experiment_tag(w: World) -> str | None:
    with as_user("admin"):
        return MlflowClient().get_experiment(w.experiment_id).tags.get("touched")


def _model_tag(w: World) -> str | None:
    with as_user("admin"):
        return MlflowClient().get_registered_model(w.model).tags.get("touched")


def _fresh_run(w: World) -> str:
    with as_user("admin"):
        return MlflowClient().create_run(w.experiment_id).info.run_id


@dataclass(frozen=True)
class Case:
    name: str
    allowed: set[str]
    act: Callable[[World, str], Any]
    # (read the state before, check it is unchanged after a denied attempt)
    state: Callable[[World], Any] | None = None


def _upload(w: World, who: str) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"authz-{who}.txt"
    path.write_text(who)
    MlflowClient().log_artifact(w.run_id, str(path))


def _artifacts(w: World) -> list[str]:
    with as_user("admin"):
        return sorted(f.path for f in MlflowClient().list_artifacts(w.run_id))


CASES = [
    Case("get_experiment", EXPERIMENT_READ, lambda w, _: MlflowClient().get_experiment(w.experiment_id)),
    Case("get_run", EXPERIMENT_READ, lambda w, _: MlflowClient().get_run(w.run_id)),
    Case("metric_history", EXPERIMENT_READ, lambda w, _: MlflowClient().get_metric_history(w.run_id, "loss")),
    Case("list_artifacts", EXPERIMENT_READ, lambda w, _: MlflowClient().list_artifacts(w.run_id)),
    Case("set_experiment_tag", EXPERIMENT_EDIT,
         lambda w, who: MlflowClient().set_experiment_tag(w.experiment_id, "touched", who), _experiment_tag),
    Case("log_metric", EXPERIMENT_EDIT, lambda w, _: MlflowClient().log_metric(w.run_id, "loss", 2.0),
         _metric_count),
    Case("create_run", EXPERIMENT_EDIT, lambda w, _: MlflowClient().create_run(w.experiment_id)),
    Case("log_artifact", EXPERIMENT_EDIT, _upload, _artifacts),
    Case("delete_run", MANAGE, lambda w, _: MlflowClient().delete_run(_fresh_run(w))),
    Case("get_registered_model", MODEL_READ, lambda w, _: MlflowClient().get_registered_model(w.model)),
    Case("set_registered_model_tag", MODEL_EDIT,
         lambda w, who: MlflowClient().set_registered_model_tag(w.model, "touched", who), _model_tag),
    Case("create_model_version", MODEL_EDIT,
         lambda w, _: MlflowClient().create_model_version(w.model, f"runs:/{w.run_id}/model", w.run_id)),
]


@pytest.mark.parametrize("who", sorted(ALL))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_permission_matrix(world: World, case: Case, who: str) -> None:
    before = case.state(world) if case.state else None
    with _client_for(world, who):
        if who in case.allowed:
            case.act(world, who)
            return
        # The artifact proxy answers through requests' HTTPError, the REST API through MlflowException.
        with pytest.raises((MlflowException, requests.HTTPError)) as refused:
            case.act(world, who)
    expected = "UNAUTHENTICATED" if who == "anonymous" else "PERMISSION_DENIED"
    assert expected in str(refused.value), str(refused.value)
    if case.state:
        assert case.state(world) == before, f"a denied {case.name} by {who} changed something"


def test_denied_answer_is_mlflow_json(world: World) -> None:
    response = requests.post(
        world.url + "/ajax-api/2.0/mlflow/experiments/set-experiment-tag",
        json={"experiment_id": world.experiment_id, "key": "k", "value": "v"},
        auth=("reader", PASSWORD), timeout=10,
    )
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"


def test_search_shows_only_readable(world: World) -> None:
    with as_user("denied"):
        client = MlflowClient()
        names = {e.name for e in client.search_experiments()}
        assert "team-exp" not in names
        assert client.search_runs([world.experiment_id]) == []
        assert "team-model" not in {m.name for m in client.search_registered_models()}
        assert client.search_model_versions(f"name='{world.model}'") == []
    with as_user("reader"):
        assert "team-exp" in {e.name for e in MlflowClient().search_experiments()}
        assert [r.info.run_id for r in MlflowClient().search_runs([world.experiment_id], max_results=1000)]


def test_user_tag_cannot_be_rewritten(world: World) -> None:
    with as_user("editor"), pytest.raises(RestException, match="PERMISSION_DENIED"):
        MlflowClient().set_tag(world.run_id, "mlflow.user", "editor")
    with as_user("admin"):
        assert MlflowClient().get_run(world.run_id).data.tags["mlflow.user"] == "owner"


def test_auth_api(world: World) -> None:
    auth = get_app_client("basic-auth", tracking_uri=world.url)
    with as_user("reader"):
        with pytest.raises(RestException, match="PERMISSION_DENIED"):
            auth.create_user("mallory", PASSWORD)
        with pytest.raises(RestException, match="PERMISSION_DENIED"):
            auth.grant_user_permission("reader", "experiment", world.experiment_id, "MANAGE")
        assert auth.get_user("reader").username == "reader"
        with pytest.raises(RestException, match="PERMISSION_DENIED"):
            auth.get_user("owner")
        mine = requests.get(world.url + "/api/3.0/mlflow/users/current/permissions",
                            auth=("reader", PASSWORD), timeout=10).json()
        assert mine["is_admin"] is False
    # As MLflow: another user's effective permission is for admins (and the user) only.
    with as_user("owner"), pytest.raises(RestException, match="PERMISSION_DENIED"):
        auth.get_user_permission("reader", "experiment", world.experiment_id)
    with as_user("admin"):
        effective = auth.get_user_permission("reader", "experiment", world.experiment_id)
        assert (effective.permission, effective.allowed) == ("READ", False)  # the default
        assert auth.get_user_permission("editor", "experiment", world.experiment_id).permission == "EDIT"
    with as_user("owner"), pytest.raises(RestException, match="RESOURCE_ALREADY_EXISTS"):
        auth.grant_user_permission("editor", "experiment", world.experiment_id, "READ")
    with as_user("admin"):
        role = auth.list_roles("default")[0]
        members = {a.user_id for a in auth.list_role_users(role.id)}
        assert members == {auth.get_user("member").id, auth.get_user("denied").id}
        assert [r.name for r in auth.list_user_roles("member")] == ["team-edit"]
        auth.update_user_admin("reader", True)
    with as_user("reader"):
        MlflowClient().set_experiment_tag(world.experiment_id, "admin-now", "yes")
    with as_user("admin"):
        auth.update_user_admin("reader", False)
        with pytest.raises(RestException):
            auth.delete_user("admin")  # not oneself


def test_password_change_needs_current_password(world: World) -> None:
    auth = get_app_client("basic-auth", tracking_uri=world.url)
    with as_user("admin"):
        auth.create_user("temp", PASSWORD)
    with as_user("temp"):
        with pytest.raises(RestException, match="Current password"):
            auth.update_user_password("temp", "another-pass-2")
        auth.update_user_password("temp", PASSWORD + "x", current_password=PASSWORD)
    assert requests.get(world.url + "/api/2.0/mlflow/users/current", auth=("temp", PASSWORD + "x"),
                        timeout=10).json()["user"]["username"] == "temp"


def test_audit_records_writes_and_denials(world: World) -> None:
    wrong = "wrong-password-in-audit"
    refused_login = requests.get(world.url + "/api/2.0/mlflow/experiments/search", auth=("reader", wrong), timeout=10)
    assert refused_login.status_code == 401
    time.sleep(1.2)  # the audit sink writes in batches every half second
    response = requests.get(world.url + "/api/2.0/trackgate/audit/search", auth=("admin", PASSWORD), timeout=10)
    records = response.json()["records"]
    assert any(r["subject"] == "reader" and r["outcome"] == "denied" for r in records)
    assert any(r["subject"] == "owner" and "grant" in (r["detail"] or "") for r in records)
    assert any(r["action"] == "LOGIN basic" and r["subject"] == "reader" and r["outcome"] == "denied"
               for r in records)
    assert all(PASSWORD not in str(r) and wrong not in str(r) for r in records)
    refused = requests.get(world.url + "/api/2.0/trackgate/audit/search", auth=("reader", PASSWORD), timeout=10)
    assert refused.status_code == 403
