"""`/graphql` against `trackgate server`, with the queries MLflow's web UI sends, on data the
official mlflow client logged."""

from __future__ import annotations

from typing import Any

import mlflow
import pytest
import requests

from tests.server_process import RunningServer

pytestmark = pytest.mark.slow

GET_RUN = """
query MlflowGetRunQuery($data: MlflowGetRunInput!) @component(name: "MlflowRunDetails") {
  mlflowGetRun(input: $data) {
    apiError { code message }
    run {
      info { runUuid runName experimentId status startTime lifecycleStage }
      data { metrics { key value step timestamp } params { key value } tags { key value } }
      experiment { experimentId name tags { key value } }
      modelVersions { name version status }
      inputs { datasetInputs { dataset { name digest } } }
    }
  }
}
"""


def gql(server: RunningServer, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    r = requests.post(server.url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_ui_queries(server: RunningServer, tracking: str) -> None:
    experiment_id = mlflow.set_experiment("graphql").experiment_id
    with mlflow.start_run(run_name="g") as run:
        mlflow.log_param("lr", "0.1")
        for step in range(5):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_text("x", "a/b.txt")
    run_id = run.info.run_id

    out = gql(server, GET_RUN, {"data": {"runId": run_id}})
    assert out["errors"] is None, out
    got = out["data"]["mlflowGetRun"]["run"]
    assert got["info"]["runName"] == "g" and got["info"]["status"] == "FINISHED"
    assert isinstance(got["info"]["startTime"], str)  # LongString
    assert got["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert got["experiment"]["name"] == "graphql"

    out = gql(server, """query Q($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids, maxResults: 10}) {
        runs { info { runId } } nextPageToken } }""", {"ids": [experiment_id]})
    assert [r["info"]["runId"] for r in out["data"]["mlflowSearchRuns"]["runs"]] == [run_id]

    out = gql(server, """query Q($ids: [String]) { mlflowGetMetricHistoryBulkInterval(input: {runIds: $ids,
        metricKey: "loss", maxResults: 3}) { metrics { step value runId } } }""", {"ids": [run_id]})
    steps = [m["step"] for m in out["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]]
    assert steps[0] == "0" and steps[-1] == "4" and len(steps) == 3

    out = gql(server, """query Q($id: String) { mlflowListArtifacts(input: {runId: $id, path: "a"}) {
        files { path isDir fileSize } } }""", {"id": run_id})
    assert out["data"]["mlflowListArtifacts"]["files"] == [{"path": "a/b.txt", "isDir": False, "fileSize": "1"}]

    out = gql(server, 'query { mlflowGetExperiment(input: {experimentId: "424242"}) { apiError { code } } }')
    assert out["data"]["mlflowGetExperiment"]["apiError"]["code"] == "RESOURCE_DOES_NOT_EXIST"


def test_limits_and_errors(server: RunningServer) -> None:
    deep = "query { mlflowGetRun(input: {runId: \"x\"}) { run { info { runId } } } " + "}"
    assert gql(server, deep)["errors"] is None
    aliases = "query { " + " ".join(f'a{i}: test(inputString: "x") {{ output }}' for i in range(11)) + " }"
    assert "root fields" in gql(server, aliases)["errors"][0]
    assert gql(server, "query { nope }")["errors"]
    batched = requests.post(server.url + "/graphql", json=[{"query": "query { test { output } }"}], timeout=10)
    assert batched.status_code == 400


def test_schema_has_every_type_field_and_value_of_mlflows() -> None:
    """Any query MLflow's UI (of the installed mlflow) can send validates against ours: every type,
    field (with its type), argument and enum value of MLflow's schema is in trackgate's."""
    import graphql
    from mlflow.server.graphql.graphql_schema_extensions import schema as mlflow_schema

    from tracking_core.api.graphql_schema import SDL

    theirs, ours = graphql.build_schema(str(mlflow_schema)), graphql.build_schema(SDL)
    missing = []
    for name, kind in theirs.type_map.items():
        if name.startswith("__"):
            continue
        mine = ours.type_map.get(name)
        if mine is None or type(mine) is not type(kind):
            missing.append(name)
            continue
        for field_name, field in getattr(kind, "fields", {}).items():
            have = mine.fields.get(field_name)  # type: ignore[union-attr]
            if have is None or str(have.type) != str(field.type):
                missing.append(f"{name}.{field_name}: {field.type}")
                continue
            for arg, spec in getattr(field, "args", {}).items():
                if arg not in have.args or str(have.args[arg].type) != str(spec.type):
                    missing.append(f"{name}.{field_name}({arg}: {spec.type})")
        missing += [f"{name}.{v}" for v in getattr(kind, "values", {}) if v not in mine.values]  # type: ignore[union-attr]
    assert not missing, missing
