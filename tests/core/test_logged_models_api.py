"""Logged models (MLflow 3) and run outputs, on every backend."""

from __future__ import annotations

import pytest

from tests.core.conftest import Api

PATH = "logged-models"


async def _model(api: Api, eid: str, **fields: object) -> dict:
    return (await api.post(PATH, {"experiment_id": eid, **fields}))["model"]


async def test_create_get_finalize(api: Api) -> None:
    eid = await api.new_experiment()
    run_id = (await api.new_run(eid))["info"]["run_id"]
    model = await _model(api, eid, name="model", source_run_id=run_id, model_type="sklearn",
                         params=[{"key": "alpha", "value": "0.5"}], tags=[{"key": "flavor", "value": "sk"}])
    info = model["info"]
    assert info["model_id"].startswith("m-") and len(info["model_id"]) == 34
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/models/{info['model_id']}/artifacts"
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["source_run_id"] == run_id and info["name"] == "model" and info["model_type"] == "sklearn"
    assert info["tags"] == [{"key": "flavor", "value": "sk"}]
    assert model["data"]["params"] == [{"key": "alpha", "value": "0.5"}]
    ready = (await api.call("PATCH", f"/api/2.0/mlflow/{PATH}/{info['model_id']}",
                            {"model_id": info["model_id"], "status": "LOGGED_MODEL_READY"}))["model"]
    assert ready["info"]["status"] == "LOGGED_MODEL_READY"
    got = (await api.get(f"{PATH}/{info['model_id']}"))["model"]
    assert got["info"]["status"] == "LOGGED_MODEL_READY"
    assert got["info"]["last_updated_timestamp_ms"] >= got["info"]["creation_timestamp_ms"]


async def test_unnamed_model_and_bad_names(api: Api) -> None:
    eid = await api.new_experiment()
    assert (await _model(api, eid))["info"]["name"]
    error = await api.post(PATH, {"experiment_id": eid, "name": "a/b"}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    error = await api.post(PATH, {"experiment_id": "424242"}, expect=404)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_delete_hides_model(api: Api) -> None:
    model_id = (await _model(api, await api.new_experiment()))["info"]["model_id"]
    await api.call("DELETE", f"/api/2.0/mlflow/{PATH}/{model_id}")
    assert (await api.get(f"{PATH}/{model_id}", expect=404))["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_tags_and_params(api: Api) -> None:
    model_id = (await _model(api, await api.new_experiment()))["info"]["model_id"]
    await api.call("PATCH", f"/api/2.0/mlflow/{PATH}/{model_id}/tags",
                   {"tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]})
    await api.call("PATCH", f"/api/2.0/mlflow/{PATH}/{model_id}/tags", {"tags": [{"key": "a", "value": "3"}]})
    await api.call("DELETE", f"/api/2.0/mlflow/{PATH}/{model_id}/tags/b")
    await api.post(f"{PATH}/{model_id}/params", {"params": [{"key": "p", "value": "x"}]})
    model = (await api.get(f"{PATH}/{model_id}"))["model"]
    assert model["info"]["tags"] == [{"key": "a", "value": "3"}]
    assert model["data"]["params"] == [{"key": "p", "value": "x"}]
    await api.call("DELETE", f"/api/2.0/mlflow/{PATH}/{model_id}/tags/b", expect=404)


async def test_search_by_name_as_runs_uri_resolution_does(api: Api) -> None:
    eid = await api.new_experiment()
    run_id = (await api.new_run(eid))["info"]["run_id"]
    wanted = await _model(api, eid, name="model", source_run_id=run_id)
    await _model(api, eid, name="other", source_run_id=run_id)
    found = await api.post(f"{PATH}/search", {"experiment_ids": [eid], "filter": "name = 'model'"})
    assert [m["info"]["model_id"] for m in found["models"]] == [wanted["info"]["model_id"]]
    found = await api.post(f"{PATH}/search", {"experiment_ids": [eid],
                                              "filter": f"source_run_id = '{run_id}' AND name LIKE 'o%'"})
    assert [m["info"]["name"] for m in found["models"]] == ["other"]


async def test_search_paging_order_and_token_scope(api: Api) -> None:
    eid = await api.new_experiment()
    names = [f"m{i}" for i in range(5)]
    for name in names:
        await _model(api, eid, name=name)
    seen, token = [], None
    order = [{"field_name": "name", "ascending": True}]
    while True:
        body = {"experiment_ids": [eid], "max_results": 2, "order_by": order}
        if token:
            body["page_token"] = token
        page = await api.post(f"{PATH}/search", body)
        seen += [m["info"]["name"] for m in page["models"]]
        token = page.get("next_page_token")
        if not token:
            break
        other_query = await api.post(f"{PATH}/search", {"experiment_ids": [eid], "page_token": token}, expect=400)
        assert other_query["error_code"] == "INVALID_PARAMETER_VALUE"
    assert seen == names
    error = await api.post(f"{PATH}/search", {"experiment_ids": [eid], "filter": "bogus.x = 1"}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_metrics_with_model_id_belong_to_the_model(api: Api) -> None:
    eid = await api.new_experiment()
    run_id = (await api.new_run(eid))["info"]["run_id"]
    good = (await _model(api, eid, name="good"))["info"]["model_id"]
    bad = (await _model(api, eid, name="bad"))["info"]["model_id"]
    await api.post("runs/log-batch", {"run_id": run_id, "metrics": [
        {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0, "model_id": good,
         "dataset_name": "eval", "dataset_digest": "d1"},
        {"key": "acc", "value": 0.4, "timestamp": 1, "step": 0, "model_id": bad},
    ]})
    model = (await api.get(f"{PATH}/{good}"))["model"]
    assert model["data"]["metrics"] == [{"key": "acc", "value": 0.9, "timestamp": 1, "step": 0, "run_id": run_id,
                                         "model_id": good, "dataset_name": "eval", "dataset_digest": "d1"}]
    found = await api.post(f"{PATH}/search", {"experiment_ids": [eid], "filter": "metrics.acc > 0.5"})
    assert [m["info"]["model_id"] for m in found["models"]] == [good]
    by_metric = await api.post(f"{PATH}/search", {"experiment_ids": [eid],
                                                  "order_by": [{"field_name": "metrics.acc", "ascending": False}]})
    assert [m["info"]["model_id"] for m in by_metric["models"]] == [good, bad]
    by_dataset = await api.post(f"{PATH}/search", {"experiment_ids": [eid], "datasets": [{"dataset_name": "eval"}]})
    assert [m["info"]["model_id"] for m in by_dataset["models"]] == [good]


async def test_run_outputs_and_model_inputs(api: Api) -> None:
    eid = await api.new_experiment()
    run_id = (await api.new_run(eid))["info"]["run_id"]
    model_id = (await _model(api, eid, source_run_id=run_id))["info"]["model_id"]
    await api.post("runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})
    await api.post("runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})
    consumer = (await api.new_run(eid))["info"]["run_id"]
    await api.post("runs/log-inputs", {"run_id": consumer, "models": [{"model_id": model_id}]})
    assert (await api.get("runs/get", {"run_id": run_id}))["run"]["outputs"] == {
        "model_outputs": [{"model_id": model_id, "step": 0}]
    }
    assert (await api.get("runs/get", {"run_id": consumer}))["run"]["inputs"] == {
        "model_inputs": [{"model_id": model_id}]
    }
    error = await api.post("runs/outputs", {"run_id": run_id, "models": [{"model_id": "m-" + "0" * 32, "step": 0}]},
                           expect=404)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("status", ["NOT_A_STATUS", "LOGGED_MODEL_STATUS_UNSPECIFIED"], ids=["unknown", "unspecified"])
async def test_finalize_rejects_bad_status(api: Api, status: str) -> None:
    model_id = (await _model(api, await api.new_experiment()))["info"]["model_id"]
    error = await api.call("PATCH", f"/api/2.0/mlflow/{PATH}/{model_id}", {"status": status}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
