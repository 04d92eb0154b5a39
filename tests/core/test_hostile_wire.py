"""Issue 13, findings 6 and 7: JSON types and integer ranges held as MLflow's protobuf parsing holds them.

Every row was checked against `mlflow server` 3.17 (sqlite backend): where MLflow answers 400
INVALID_PARAMETER_VALUE, so do we; where MLflow answered 500 (a 400-digit experiment id, a
filter number past 64 bits, a page token with a huge offset) we answer 400, because the value
is the client's mistake. Each refused request leaves the store as it was.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from tests.core.conftest import Api
from tests.core.registry_support import MV, RM, new_model, new_version


async def _experiment_count(api: Api) -> int:
    data = await api.post("experiments/search", {"max_results": 50000, "view_type": "ALL"})
    return len(data.get("experiments", []))


async def _run_data(api: Api, run_id: str) -> dict[str, Any]:
    return (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]


def _name() -> str:
    return f"hostile-{uuid.uuid4().hex[:10]}"


# (endpoint, body builder given a run id, fragment of the message naming the field)
TYPE_ROWS: list[tuple[str, Any, str]] = [
    ("experiments/create", lambda run: {"name": 123}, "'name'"),
    ("experiments/create", lambda run: {"name": True}, "'name'"),
    ("experiments/create", lambda run: {"name": _name(), "tags": "notalist"}, "'tags'"),
    ("experiments/create", lambda run: {"name": _name(), "tags": {"key": "a", "value": "b"}}, "'tags'"),
    ("experiments/create", lambda run: {"name": _name(), "artifact_location": 5}, "'artifact_location'"),
    ("runs/create", lambda run: {"experiment_id": 0}, "'experiment_id'"),
    ("runs/log-metric", lambda run: {"run_id": 31, "key": "m", "value": 1, "timestamp": 1}, "'run_id'"),
    ("runs/log-metric", lambda run: {"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": "x"}, "'step'"),
    ("runs/set-tag", lambda run: {"run_id": run, "key": "t", "value": 41}, "'value'"),
    ("runs/log-parameter", lambda run: {"run_id": run, "key": 31, "value": "v"}, "'key'"),
    ("runs/log-parameter", lambda run: {"run_id": run, "key": "p", "value": 1.5}, "'value'"),
    ("runs/log-batch", lambda run: {"run_id": run, "metrics": "x"}, "'metrics'"),
    ("runs/update", lambda run: {"run_id": run, "end_time": "x"}, "'end_time'"),
    ("runs/search", lambda run: {"experiment_ids": "0"}, "'experiment_ids'"),
    ("experiments/search", lambda run: {"max_results": 5, "order_by": "name"}, "'order_by'"),
]
TYPE_IDS = ["name-int", "name-bool", "tags-string", "tags-object", "artifact-location-int", "experiment-id-int",
            "run-id-int", "step-word", "tag-value-int", "param-key-int", "param-value-float",
            "batch-metrics-string", "end-time-word", "experiment-ids-string", "order-by-string"]


@pytest.mark.parametrize(("path", "body", "fragment"), TYPE_ROWS, ids=TYPE_IDS)
async def test_wrong_json_type_is_refused_as_mlflow_does(api: Api, path: str, body: Any, fragment: str) -> None:
    run = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    before = await _experiment_count(api), await _run_data(api, run)
    error = await api.post(path, body(run), expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in error["message"] and "Hint: Value was of type" in error["message"]
    assert (await _experiment_count(api), await _run_data(api, run)) == before


async def test_registry_string_fields_refuse_numbers(api: Api) -> None:
    name = await new_model(api)
    await new_version(api, name)
    for path, body in [
        (f"{RM}/alias", {"name": name, "alias": "a", "version": 1}),
        (f"{MV}/set-tag", {"name": name, "version": 1, "key": "k", "value": "v"}),
        (f"{MV}/transition-stage", {"name": name, "version": "1", "stage": "Staging",
                                    "archive_existing_versions": "true"}),
    ]:
        error = await api.post(path, body, expect=400)
        assert error["error_code"] == "INVALID_PARAMETER_VALUE", (path, error)
    version = (await api.get(f"{MV}/get", {"name": name, "version": "1"}))["model_version"]
    assert version["current_stage"] == "None" and "aliases" not in version and "tags" not in version


async def test_what_mlflow_accepts_stays_accepted(api: Api) -> None:
    experiment = await api.new_experiment()
    run = (await api.new_run(experiment))["info"]["run_id"]
    base = {"run_id": run, "key": "m", "value": 1.0, "timestamp": 1}
    await api.post("runs/log-metric", {**base, "step": "5"})  # int64 as a string, as protobuf JSON writes it
    await api.post("runs/log-metric", {**base, "timestamp": "1700000000000", "step": 6})
    await api.post("runs/log-metric", {**base, "value": "NaN", "step": 7})
    await api.post("runs/log-metric", {**base, "step": 2**63 - 1})
    await api.post("runs/log-metric", {**base, "step": -(2**63)})
    await api.post("runs/log-metric", {**base, "step": 8.0})
    await api.post("runs/set-tag", {"run_id": run, "key": "t", "value": None})
    found = await api.post("runs/search", {"experiment_ids": [int(experiment)]})  # numbers in a list: MLflow too
    assert [r["info"]["run_id"] for r in found["runs"]] == [run]
    steps = sorted(m["step"] for m in (await api.get("metrics/get-history", {"run_id": run, "metric_key": "m"}))[
        "metrics"])
    assert steps == [-(2**63), 5, 6, 7, 8, 2**63 - 1]


RANGE_ROWS: list[tuple[str, Any]] = [
    ("runs/log-metric", lambda run, exp: {"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": 1e30}),
    ("runs/log-metric", lambda run, exp: {"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": 1e300}),
    ("runs/log-metric", lambda run, exp: {"run_id": run, "key": "m", "value": 1, "timestamp": 2**63}),
    ("runs/log-metric", lambda run, exp: {"run_id": run, "key": "m", "value": 1, "timestamp": 1,
                                          "step": str(2**63)}),
    ("runs/log-batch", lambda run, exp: {"run_id": run, "metrics": [
        {"key": "ok", "value": 1, "timestamp": 1}, {"key": "m", "value": 1, "timestamp": 1, "step": 2**64}]}),
    ("runs/create", lambda run, exp: {"experiment_id": "9" * 400}),
    ("runs/create", lambda run, exp: {"experiment_id": exp, "start_time": 2**64}),
    ("runs/update", lambda run, exp: {"run_id": run, "end_time": -(2**63) - 10**5}),
    ("runs/search", lambda run, exp: {"experiment_ids": [exp],
                                      "filter": "attributes.start_time > 99999999999999999999999999"}),
    ("runs/search", lambda run, exp: {"experiment_ids": ["9" * 30]}),
    ("experiments/search", lambda run, exp: {"max_results": 10, "filter": "attributes.experiment_id = '" + "9" * 40
                                             + "'"}),
    ("runs/search", lambda run, exp: {"experiment_ids": [exp], "page_token": base64.b64encode(
        b"[" * 10_000 + b"]" * 10_000).decode()}),
]
RANGE_IDS = ["step-1e30", "step-1e300", "timestamp-2-63", "step-string-2-63", "batch-step-2-64",
             "experiment-id-400-digits", "start-time-2-64", "end-time-below-int64", "filter-huge-number",
             "search-experiment-id-30-digits", "experiment-filter-40-digits", "token-10000-brackets"]


@pytest.mark.parametrize(("path", "body"), RANGE_ROWS, ids=RANGE_IDS)
async def test_out_of_range_numbers_are_400(api: Api, path: str, body: Any) -> None:
    experiment = await api.new_experiment()
    run = (await api.new_run(experiment))["info"]["run_id"]
    before = await _run_data(api, run)
    error = await api.post(path, body(run, experiment), expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert await _run_data(api, run) == before  # no partial batch either


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("experiments/get", {"experiment_id": "9" * 400}),
        ("experiments/get", {"experiment_id": "-1"}),
        ("metrics/get-history", {"run_id": "r", "metric_key": "m", "max_results": str(2**70)}),
        ("experiments/search", {"max_results": "10", "page_token": base64.b64encode(
            json.dumps({"offset": 10**29}).encode()).decode()}),
        ("experiments/search", {"max_results": "10", "page_token": base64.b64encode(
            b'{"offset": ' + b"[" * 300 + b"]" * 300 + b"}").decode()}),
    ],
    ids=["experiment-id-400-digits", "experiment-id-negative", "max-results-2-70", "token-huge-offset",
         "token-nested-offset"],
)
async def test_out_of_range_query_values_are_400(api: Api, path: str, params: dict[str, str]) -> None:
    error = await api.get(path, params, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
