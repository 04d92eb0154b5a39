"""Run lifecycle and logging endpoints, on every backend."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.core.conftest import Api
from tracking_core.settings import CoreSettings
from tracking_core.store import tables
from tracking_core.store.database import create_engine


async def test_create_run_defaults_and_tags(api: Api) -> None:
    eid = await api.new_experiment()
    run = await api.new_run(eid, user_id="alice", run_name="first",
                            tags=[{"key": "mlflow.source.type", "value": "LOCAL"}])
    info = run["info"]
    assert len(info["run_id"]) == 32 and info["run_uuid"] == info["run_id"]
    assert info["status"] == "RUNNING" and info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/{info['run_id']}/artifacts"
    assert info["run_name"] == "first" and info["user_id"] == "alice"
    assert "end_time" not in info
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags == {"mlflow.runName": "first", "mlflow.source.type": "LOCAL"}
    assert run["inputs"] == {} and run["outputs"] == {}


async def test_unnamed_run_gets_a_generated_name(api: Api) -> None:
    run = await api.new_run(await api.new_experiment())
    name = run["info"]["run_name"]
    assert name.count("-") == 2
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.runName"] == name


async def test_conflicting_run_names_rejected(api: Api) -> None:
    eid = await api.new_experiment()
    error = await api.post("runs/create", {"experiment_id": eid, "run_name": "a",
                                           "tags": [{"key": "mlflow.runName", "value": "b"}]}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_run_in_deleted_or_missing_experiment(api: Api) -> None:
    eid = await api.new_experiment()
    await api.post("experiments/delete", {"experiment_id": eid})
    assert (await api.post("runs/create", {"experiment_id": eid}, expect=400))["error_code"] == (
        "INVALID_PARAMETER_VALUE"
    )
    assert (await api.post("runs/create", {"experiment_id": "99999"}, expect=404))["error_code"] == (
        "RESOURCE_DOES_NOT_EXIST"
    )


async def test_update_end_and_rename(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    info = (await api.post("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 1_700_000_001_000}))[
        "run_info"
    ]
    assert info["status"] == "FINISHED" and info["end_time"] == 1_700_000_001_000
    info = (await api.post("runs/update", {"run_uuid": run_id, "run_name": "renamed"}))["run_info"]
    assert info["run_name"] == "renamed" and info["status"] == "FINISHED"
    run = (await api.get("runs/get", {"run_id": run_id}))["run"]
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.runName"] == "renamed"
    # An unknown enum name leaves the status alone, as MLflow's parser does.
    info = (await api.post("runs/update", {"run_id": run_id, "status": "BOGUS"}))["run_info"]
    assert info["status"] == "FINISHED"
    await api.post("runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "by-tag"})
    assert (await api.get("runs/get", {"run_id": run_id}))["run"]["info"]["run_name"] == "by-tag"


async def test_delete_restore_and_writes_to_deleted_run(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    await api.post("runs/delete", {"run_id": run_id})
    assert (await api.get("runs/get", {"run_id": run_id}))["run"]["info"]["lifecycle_stage"] == "deleted"
    error = await api.post("runs/log-parameter", {"run_id": run_id, "key": "a", "value": "1"}, expect=400)
    assert "must be in the 'active' state" in error["message"]
    await api.post("runs/restore", {"run_id": run_id})
    await api.post("runs/log-parameter", {"run_id": run_id, "key": "a", "value": "1"})


async def test_unknown_run(api: Api) -> None:
    error = await api.get("runs/get", {"run_id": "deadbeef" * 4}, expect=404)
    assert error == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run with id={'deadbeef' * 4} not found"}


async def test_params_are_immutable_but_retries_succeed(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    await api.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.5"})
    await api.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.5"})
    error = await api.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"}, expect=400)
    assert "Changing param values is not allowed" in error["message"]
    params = (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]["params"]
    assert params == [{"key": "lr", "value": "0.5"}]


async def test_long_values_are_truncated(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    await api.post("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "x" * 7000})
    await api.post("runs/set-tag", {"run_id": run_id, "key": "t", "value": "y" * 9000})
    data = (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]
    assert data["params"][0]["value"] == "x" * 6000
    assert {t["key"]: t["value"] for t in data["tags"]}["t"] == "y" * 8000


async def test_latest_metric_is_greatest_step_timestamp_value(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    for value, ts, step in [(1.0, 100, 5), (2.0, 50, 7), (0.5, 10, 7), (3.0, 200, 1)]:
        await api.post("runs/log-metric", {"run_id": run_id, "key": "m", "value": value, "timestamp": ts, "step": step})
    metrics = (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]["metrics"]
    assert metrics == [{"key": "m", "value": 2.0, "timestamp": 50, "step": 7}]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("NaN", "NaN"), ("Infinity", 1.7976931348623157e308), ("-Infinity", -1.7976931348623157e308),
     ("2.5", 2.5), (3, 3.0)],
    ids=["nan", "inf", "-inf", "numeric-string", "int"],
)
async def test_metric_value_encodings(api: Api, sent: object, stored: object) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    await api.post("runs/log-metric", {"run_id": run_id, "key": "v", "value": sent, "timestamp": "1700000000000"})
    metrics = (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]["metrics"]
    assert metrics == [{"key": "v", "value": stored, "timestamp": 1_700_000_000_000, "step": 0}]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"key": "m", "value": True, "timestamp": 1}, "Invalid value true"),
        ({"key": "m", "timestamp": 1}, "value"),
        ({"key": "m", "value": 1.0}, "timestamp"),
        ({"key": "m", "value": 1.0, "timestamp": -1}, "timestamp"),
        ({"key": "a//b", "value": 1.0, "timestamp": 1}, "Names may only"),
        ({"key": "k" * 251, "value": 1.0, "timestamp": 1}, "maximum length"),
        ({"key": "m", "value": "abc", "timestamp": 1}, "Invalid value"),
    ],
    ids=["bool-value", "missing-value", "missing-timestamp", "negative-timestamp", "double-slash-key",
         "long-key", "non-numeric-string"],
)
async def test_bad_metrics_rejected(api: Api, body: dict, fragment: str) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    error = await api.post("runs/log-metric", {"run_id": run_id, **body}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in error["message"]


async def test_log_batch_all_kinds_and_idempotent_retry(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    body = {
        "run_id": run_id,
        "metrics": [{"key": "loss", "value": 1.0 / (s + 1), "timestamp": 1000 + s, "step": s} for s in range(50)],
        "params": [{"key": f"p{i}", "value": str(i)} for i in range(10)],
        "tags": [{"key": "t", "value": "1"}, {"key": "t", "value": "2"}],
    }
    await api.post("runs/log-batch", body)
    await api.post("runs/log-batch", body)  # the client's retry after a lost response
    history = await api.get("metrics/get-history", {"run_id": run_id, "metric_key": "loss"})
    assert len(history["metrics"]) == 50
    data = (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]
    assert len(data["params"]) == 10
    assert {t["key"]: t["value"] for t in data["tags"]}["t"] == "2"
    assert data["metrics"] == [{"key": "loss", "value": 1.0 / 50, "timestamp": 1049, "step": 49}]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 1001}, "at most 1000 metrics"),
        ({"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, "at most 100 params"),
        ({"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}, "at most 100 tags"),
        ({"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]}, "Duplicate parameter keys"),
    ],
    ids=["too-many-metrics", "too-many-params", "too-many-tags", "duplicate-param"],
)
async def test_log_batch_limits(api: Api, extra: dict, fragment: str) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    error = await api.post("runs/log-batch", {"run_id": run_id, **extra}, expect=400)
    assert fragment in error["message"]


async def test_log_batch_is_all_or_nothing(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    await api.post("runs/log-parameter", {"run_id": run_id, "key": "fixed", "value": "1"})
    body = {
        "run_id": run_id,
        "params": [{"key": "fixed", "value": "2"}],
        "metrics": [{"key": "m", "value": 1, "timestamp": 1}],
        "tags": [{"key": "t", "value": "v"}],
    }
    await api.post("runs/log-batch", body, expect=400)
    data = (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]
    assert "metrics" not in data
    assert "t" not in {t["key"] for t in data["tags"]}


async def test_delete_tag(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    await api.post("runs/set-tag", {"run_id": run_id, "key": "x", "value": "1"})
    await api.post("runs/delete-tag", {"run_id": run_id, "key": "x"})
    assert (await api.post("runs/delete-tag", {"run_id": run_id, "key": "x"}, expect=404))["error_code"] == (
        "RESOURCE_DOES_NOT_EXIST"
    )


async def test_log_inputs_dedupes_datasets(api: Api) -> None:
    eid = await api.new_experiment()
    runs = [(await api.new_run(eid))["info"]["run_id"] for _ in range(2)]
    dataset = {"name": "iris", "digest": "abc123", "source_type": "local", "source": '{"uri": "/data/iris.csv"}',
               "schema": '{"mlflow_colspec": []}'}
    for run_id in runs:
        body = {"run_id": run_id, "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}],
                                                "dataset": dataset}]}
        await api.post("runs/log-inputs", body)
        await api.post("runs/log-inputs", body)
    run = (await api.get("runs/get", {"run_id": runs[1]}))["run"]
    assert run["inputs"] == {"dataset_inputs": [
        {"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "training"}]}
    ]}


async def test_metric_history_paging_and_order(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    points = [{"key": "h", "value": float(s), "timestamp": 10_000 - s, "step": s} for s in range(7)]
    await api.post("runs/log-batch", {"run_id": run_id, "metrics": points})
    got, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": "h", "max_results": "3"}
        if token:
            params["page_token"] = token
        page = await api.get("metrics/get-history", params)
        got += page["metrics"]
        token = page.get("next_page_token")
        if not token:
            break
    assert [p["step"] for p in got] == [6, 5, 4, 3, 2, 1, 0]  # ordered by timestamp
    assert (await api.get("metrics/get-history", {"run_id": run_id, "metric_key": "nope"})) == {}
    assert (await api.get("metrics/get-history", {"run_id": run_id, "metric_key": "h", "max_results": "0"},
                          expect=400))["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_bulk_interval_samples_keep_first_and_last(api: Api) -> None:
    eid = await api.new_experiment()
    run_ids = [(await api.new_run(eid))["info"]["run_id"] for _ in range(2)]
    for run_id in run_ids:
        points = [{"key": "c", "value": float(s), "timestamp": 1000 + s, "step": s} for s in range(100)]
        await api.post("runs/log-batch", {"run_id": run_id, "metrics": points})
    resp = await api.call("GET", "metrics/get-history-bulk-interval",
                          params=[("run_ids", run_ids[0]), ("run_ids", run_ids[1]), ("metric_key", "c"),
                                  ("max_results", "10")])
    by_run: dict[str, list[int]] = {}
    for p in resp["metrics"]:
        by_run.setdefault(p["run_id"], []).append(p["step"])
    assert set(by_run) == set(run_ids)
    for steps in by_run.values():
        assert len(steps) == 10 and steps[0] == 0 and steps[-1] == 99 and steps == sorted(steps)
    ranged = await api.call("GET", "metrics/get-history-bulk-interval",
                            params={"run_ids": run_ids[0], "metric_key": "c", "start_step": "10", "end_step": "20"})
    assert [p["step"] for p in ranged["metrics"]] == list(range(10, 21))



async def test_a_page_of_50000_runs_is_served_on_every_backend(api: Api, backend_uri: str) -> None:
    """MLflow allows max_results up to 50,000. Loading that many runs must not put one bound
    parameter per run into a single statement: PostgreSQL's protocol stops at 32,767 and MySQL at
    65,535 (and reading their children binds the ids twice)."""
    exp = await api.new_experiment()
    first = await api.new_run(exp, tags=[{"key": "t", "value": "v"}])
    await api.post("runs/log-batch", {"run_id": first["info"]["run_id"], "params": [{"key": "p", "value": "1"}],
                                      "metrics": [{"key": "m", "value": 0.5, "timestamp": 1, "step": 0}]})
    # The rest go straight into the table: 33,000 API calls would take minutes.
    extra = 33_000
    engine = create_engine(CoreSettings(backend_store_uri=backend_uri))
    try:
        async with engine.begin() as conn:
            row = (await conn.execute(sa.select(tables.runs).where(tables.runs.c.run_id == first["info"]["run_id"])))
            template = dict(row.mappings().one())
            rows = [{**template, "run_id": f"{i:032x}", "name": f"bulk-{i}", "start_time": i} for i in range(extra)]
            for start in range(0, extra, 2000):
                await conn.execute(tables.runs.insert(), rows[start:start + 2000])
    finally:
        await engine.dispose()
    found = await api.post("runs/search", {"experiment_ids": [exp], "max_results": 50000})
    assert len(found["runs"]) == extra + 1 and "next_page_token" not in found
    newest = found["runs"][0]  # start_time 1.7e12 sorts first (DESC)
    assert newest["info"]["run_id"] == first["info"]["run_id"]
    assert newest["data"]["params"] == [{"key": "p", "value": "1"}]
    assert [m["key"] for m in newest["data"]["metrics"]] == ["m"]
    assert [r["info"]["start_time"] for r in found["runs"][1:4]] == [extra - 1, extra - 2, extra - 3]
