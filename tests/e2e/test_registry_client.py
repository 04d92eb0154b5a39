"""The model registry with the official mlflow client and scikit-learn, through `trackgate server`.

log_model → register → load by every URI form (logged model, run, version, alias, stage, latest),
aliases, search, stage transitions, delete; proxied artifacts on local disk and on S3 (moto).
Also the source-validation regex, set through MLflow's own environment variable.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from tests.e2e.conftest import proxied_server
from tests.server_process import RunningServer, trackgate_server

pytestmark = pytest.mark.slow

X = np.array([[0.0, 0.1], [0.2, 0.1], [0.9, 1.0], [1.0, 0.8], [0.1, 0.0], [0.8, 0.9]])
Y = np.array([0, 0, 1, 1, 0, 1])
# Given, so the client skips inferring requirements (slow, and nothing to do with the server).
PIP = ["scikit-learn"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["local", "s3"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with proxied_server(request.param, tmp_path_factory.mktemp(f"registry-{request.param}")) as running:
        yield running



def predicts_like(uri: str, expected: np.ndarray) -> bool:
    return bool((mlflow.pyfunc.load_model(uri).predict(X) == expected).all())


def test_log_register_and_load_by_every_uri(tracking: str) -> None:
    client = MlflowClient()
    mlflow.set_experiment(unique("registry"))
    name = unique("churn")
    model = LogisticRegression().fit(X, Y)
    expected = model.predict(X)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X[:2], registered_model_name=name, pip_requirements=PIP
        )
    assert str(info.registered_model_version) == "1"
    version = client.get_model_version(name, "1")
    assert version.status == "READY" and version.current_stage == "None"
    assert version.run_id == run.info.run_id
    download_uri = client.get_model_version_download_uri(name, "1")
    assert download_uri.endswith(f"/models/{info.model_id}/artifacts")
    for uri in (
        info.model_uri,
        f"runs:/{run.info.run_id}/model",
        f"models:/{name}/1",
        f"models:/{name}/latest",
    ):
        assert predicts_like(uri, expected), uri
    assert (mlflow.sklearn.load_model(f"models:/{name}/1").predict(X) == expected).all()

    client.set_registered_model_alias(name, "champion", 1)
    assert predicts_like(f"models:/{name}@champion", expected)
    assert client.get_model_version_by_alias(name, "champion").aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "1"}

    # A second registration of the same logged model, by its run URI.
    second = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert second.version == "2"
    links = json.loads(client.get_logged_model(info.model_id).tags["mlflow.modelVersions"])
    assert {"name": name, "version": "1"} in links and {"name": name, "version": "2"} in links

    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert predicts_like(f"models:/{name}/Production", expected)
    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Archived": "1", "Production": "2"}


def test_search_describe_tag_rename_delete(tracking: str) -> None:
    client = MlflowClient()
    mlflow.set_experiment(unique("registry-admin"))
    prefix = unique("ch")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, Y), name="model", pip_requirements=PIP)
    for suffix in ("a", "b", "c"):
        client.create_registered_model(
            f"{prefix}-{suffix}", tags={"team": suffix}, description=f"model {suffix}"
        )
        client.create_model_version(f"{prefix}-{suffix}", info.model_uri, model_id=info.model_id)
    # register_model on an existing name goes on after RESOURCE_ALREADY_EXISTS.
    assert mlflow.register_model(info.model_uri, f"{prefix}-a").version == "2"

    found = client.search_registered_models(f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [m.name for m in found] == [f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]
    assert [
        m.name for m in client.search_registered_models(f"name LIKE '{prefix}-%' AND tags.team = 'b'")
    ] == [f"{prefix}-b"]
    versions = client.search_model_versions(f"name = '{prefix}-a'", order_by=["version_number ASC"])
    assert [v.version for v in versions] == ["1", "2"]
    paged = client.search_registered_models(f"name LIKE '{prefix}-%'", max_results=2)
    assert len(paged) == 2 and paged.token
    assert (
        len(client.search_registered_models(f"name LIKE '{prefix}-%'", max_results=2, page_token=paged.token))
        == 1
    )

    client.update_registered_model(f"{prefix}-a", description="better")
    client.update_model_version(f"{prefix}-a", "1", description="first")
    client.set_registered_model_tag(f"{prefix}-a", "owner", "alice")
    client.set_model_version_tag(f"{prefix}-a", "1", "validated", "yes")
    client.delete_registered_model_tag(f"{prefix}-a", "team")
    model = client.get_registered_model(f"{prefix}-a")
    assert model.description == "better" and model.tags == {"owner": "alice"}
    assert client.get_model_version(f"{prefix}-a", "1").tags == {"validated": "yes"}

    client.rename_registered_model(f"{prefix}-a", f"{prefix}-renamed")
    assert client.get_model_version(f"{prefix}-renamed", "2").name == f"{prefix}-renamed"
    client.delete_model_version(f"{prefix}-renamed", "2")
    assert (
        client.create_model_version(f"{prefix}-renamed", info.model_uri, model_id=info.model_id).version
        == "3"
    )
    client.delete_registered_model(f"{prefix}-renamed")
    with pytest.raises(MlflowException) as caught:
        client.get_registered_model(f"{prefix}-renamed")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_source_validation_regex_from_mlflow_env(tmp_path: Path) -> None:
    env = {"MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX": r"^models:/m-[0-9a-f]{32}$"}
    with trackgate_server(tmp_path, env=env) as srv:
        mlflow.set_tracking_uri(srv.url)
        try:
            client = MlflowClient()
            mlflow.set_experiment(unique("regex"))
            with mlflow.start_run():
                info = mlflow.sklearn.log_model(
                    LogisticRegression().fit(X, Y), name="model", pip_requirements=PIP
                )
            name = unique("guarded")
            assert mlflow.register_model(info.model_uri, name).version == "1"
            with pytest.raises(MlflowException) as caught:
                client.create_model_version(name, "s3://elsewhere/model")
            assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
            assert "Invalid model version source: 's3://elsewhere/model'." in caught.value.message
        finally:
            mlflow.set_tracking_uri("")
