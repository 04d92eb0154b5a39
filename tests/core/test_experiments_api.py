"""Experiment endpoints, on every backend."""

from __future__ import annotations

import uuid

import pytest

from tests.core.conftest import Api
from tracking_core.settings import CoreSettings
from tracking_core.store import tables
from tracking_core.store.database import create_engine


async def test_default_experiment_exists(api: Api) -> None:
    exp = (await api.get("experiments/get", {"experiment_id": "0"}))["experiment"]
    assert exp["name"] == "Default"
    assert exp["lifecycle_stage"] == "active"
    assert exp["artifact_location"] == "mlflow-artifacts:/0"


async def test_create_get_and_get_by_name(api: Api) -> None:
    name = f"create-{uuid.uuid4().hex[:8]}"
    created = await api.post("experiments/create", {"name": name, "tags": [{"key": "team", "value": "ml"}]})
    experiment_id = created["experiment_id"]
    assert experiment_id.isdigit()
    by_id = (await api.get("experiments/get", {"experiment_id": experiment_id}))["experiment"]
    by_name = (await api.get("experiments/get-by-name", {"experiment_name": name}))["experiment"]
    assert by_id == by_name
    assert by_id["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert by_id["tags"] == [{"key": "team", "value": "ml"}]
    assert by_id["creation_time"] == by_id["last_update_time"] > 0


async def test_explicit_artifact_location_is_kept(api: Api) -> None:
    name = f"loc-{uuid.uuid4().hex[:8]}"
    body = {"name": name, "artifact_location": "mlflow-artifacts:/team/x"}
    eid = (await api.post("experiments/create", body))["experiment_id"]
    exp = (await api.get("experiments/get", {"experiment_id": eid}))["experiment"]
    assert exp["artifact_location"] == "mlflow-artifacts:/team/x"


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({}, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'"),
        ({"name": ""}, "INVALID_PARAMETER_VALUE", "name"),
        ({"name": "x" * 501}, "INVALID_PARAMETER_VALUE", "maximum length"),
        ({"name": "ok-name", "artifact_location": "runs:/abc"}, "INVALID_PARAMETER_VALUE", "runs:/"),
        ({"name": "ok-name", "tags": [{"key": "../bad", "value": "v"}]}, "INVALID_PARAMETER_VALUE", "Names may only"),
    ],
    ids=["missing-name", "empty-name", "long-name", "runs-uri-location", "bad-tag-key"],
)
async def test_create_rejects_bad_input(api: Api, body: dict, code: str, fragment: str) -> None:
    if body.get("name") == "ok-name":
        body = {**body, "name": f"ok-{uuid.uuid4().hex[:8]}"}
    error = await api.post("experiments/create", body, expect=400)
    assert error["error_code"] == code
    assert fragment in error["message"]


async def test_duplicate_name_even_when_deleted(api: Api) -> None:
    name = f"dup-{uuid.uuid4().hex[:8]}"
    eid = (await api.post("experiments/create", {"name": name}))["experiment_id"]
    error = await api.post("experiments/create", {"name": name}, expect=400)
    assert error["error_code"] == "RESOURCE_ALREADY_EXISTS"
    await api.post("experiments/delete", {"experiment_id": eid})
    error = await api.post("experiments/create", {"name": name}, expect=400)
    assert error["error_code"] == "RESOURCE_ALREADY_EXISTS"


async def test_unknown_ids_and_names(api: Api) -> None:
    assert (await api.get("experiments/get", {"experiment_id": "987654"}, expect=404))["error_code"] == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    error = await api.get("experiments/get-by-name", {"experiment_name": "no-such-thing"}, expect=404)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    error = await api.get("experiments/get", {"experiment_id": "abc"}, expect=400)
    assert "must be a valid integer" in error["message"]


async def test_rename(api: Api) -> None:
    eid = await api.new_experiment()
    other = (await api.get("experiments/get", {"experiment_id": await api.new_experiment()}))["experiment"]["name"]
    new_name = f"renamed-{uuid.uuid4().hex[:8]}"
    await api.post("experiments/update", {"experiment_id": eid, "new_name": new_name})
    assert (await api.get("experiments/get", {"experiment_id": eid}))["experiment"]["name"] == new_name
    error = await api.post("experiments/update", {"experiment_id": eid, "new_name": other}, expect=400)
    assert error["error_code"] == "RESOURCE_ALREADY_EXISTS"


async def test_delete_and_restore_cascade_to_runs(api: Api) -> None:
    eid = await api.new_experiment()
    run_id = (await api.new_run(eid))["info"]["run_id"]
    await api.post("experiments/delete", {"experiment_id": eid})
    exp = (await api.get("experiments/get", {"experiment_id": eid}))["experiment"]
    assert exp["lifecycle_stage"] == "deleted"
    run = (await api.get("runs/get", {"run_id": run_id}))["run"]
    assert run["info"]["lifecycle_stage"] == "deleted"
    assert (await api.post("experiments/delete", {"experiment_id": eid}, expect=404))["error_code"] == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    await api.post("experiments/restore", {"experiment_id": eid})
    run = (await api.get("runs/get", {"run_id": run_id}))["run"]
    assert run["info"]["lifecycle_stage"] == "active"


async def test_tags_set_overwrite_delete(api: Api) -> None:
    eid = await api.new_experiment()
    await api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "1"})
    await api.post("experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "2"})
    exp = (await api.get("experiments/get", {"experiment_id": eid}))["experiment"]
    assert exp["tags"] == [{"key": "k", "value": "2"}]
    await api.post("experiments/delete-experiment-tag", {"experiment_id": eid, "key": "k"})
    exp = (await api.get("experiments/get", {"experiment_id": eid}))["experiment"]
    assert "tags" not in exp
    error = await api.post("experiments/delete-experiment-tag", {"experiment_id": eid, "key": "k"}, expect=404)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    error = await api.post(
        "experiments/set-experiment-tag", {"experiment_id": eid, "key": "big", "value": "x" * 20001}, expect=400
    )
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_search_pages_filters_and_view_types(api: Api) -> None:
    prefix = f"srch-{uuid.uuid4().hex[:8]}"
    ids = [(await api.post("experiments/create", {"name": f"{prefix}-{i}"}))["experiment_id"] for i in range(5)]
    await api.post("experiments/delete", {"experiment_id": ids[0]})
    seen: list[str] = []
    token = None
    while True:
        body = {"max_results": 2, "filter": f"name LIKE '{prefix}%'", "order_by": ["name ASC"]}
        if token:
            body["page_token"] = token
        page = await api.post("experiments/search", body)
        seen += [e["name"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        if not token:
            break
        assert page["experiments"], "a page with a token must not be empty"
    assert seen == [f"{prefix}-{i}" for i in range(1, 5)]
    deleted = await api.post("experiments/search", {"max_results": 10, "filter": f"name LIKE '{prefix}%'",
                                                     "view_type": "DELETED_ONLY"})
    assert [e["experiment_id"] for e in deleted["experiments"]] == [ids[0]]
    everything = await api.get("experiments/search", {"max_results": "10", "filter": f"name LIKE '{prefix}%'",
                                                       "view_type": "ALL"})
    assert len(everything["experiments"]) == 5


async def test_search_requires_max_results(api: Api) -> None:
    error = await api.post("experiments/search", {}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    error = await api.post("experiments/search", {"max_results": 50001}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_a_page_of_50000_experiments_is_served_on_every_backend(api: Api, backend_uri: str) -> None:
    """max_results may be 50,000; PostgreSQL binds at most 32,767 parameters per statement."""
    prefix = f"bulk-{uuid.uuid4().hex[:8]}"
    count = 33_000
    # Straight into the table (33,000 API calls would take minutes), deleted so that the other
    # tests' searches of active experiments never meet them.
    rows = [
        {"name": f"{prefix}-{i:05d}", "artifact_location": f"/tmp/{prefix}/{i}", "lifecycle_stage": "deleted",
         "creation_time": i, "last_update_time": i}
        for i in range(count)
    ]
    engine = create_engine(CoreSettings(backend_store_uri=backend_uri))
    try:
        async with engine.begin() as conn:
            for start in range(0, count, 2000):
                await conn.execute(tables.experiments.insert(), rows[start:start + 2000])
    finally:
        await engine.dispose()
    body = {"max_results": 50000, "filter": f"name LIKE '{prefix}-%'", "view_type": "DELETED_ONLY",
            "order_by": ["name ASC"]}
    found = (await api.post("experiments/search", body))["experiments"]
    assert [e["name"] for e in found] == [r["name"] for r in rows]
    assert found[-1]["lifecycle_stage"] == "deleted" and found[-1]["creation_time"] == count - 1
