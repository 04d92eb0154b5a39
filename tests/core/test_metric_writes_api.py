"""Metric writes to runs that cannot take them, and batches of metrics alone, on every backend.

On PostgreSQL a metrics-only write is one statement that checks the run and writes only if it is
active (store/pg_writes.py); on SQLite the write runs on the driver cursor. Both must answer
exactly as the generic path does and leave nothing behind when they refuse.
"""

from __future__ import annotations

from tests.core.conftest import Api

MISSING = "deadbeef" * 4


def point(run_id: str, step: int, value: float = 1.0, key: str = "m") -> dict[str, object]:
    return {"run_id": run_id, "key": key, "value": value, "timestamp": 1000 + step, "step": step}


async def test_log_metric_to_a_missing_run(api: Api) -> None:
    error = await api.post("runs/log-metric", point(MISSING, 0), expect=404)
    assert error == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run with id={MISSING} not found"}
    batch = {"run_id": MISSING, "metrics": [point(MISSING, 0)]}
    error = await api.post("runs/log-batch", batch, expect=404)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_log_metric_to_a_deleted_run_writes_nothing(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    await api.post("runs/delete", {"run_id": run_id})
    for path, body in (("runs/log-metric", point(run_id, 1)), ("runs/log-batch", {"run_id": run_id,
                                                                                   "metrics": [point(run_id, 2)]})):
        error = await api.post(path, body, expect=400)
        assert error["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "must be in the 'active' state" in error["message"]
    await api.post("runs/restore", {"run_id": run_id})
    history = await api.get("metrics/get-history", {"run_id": run_id, "metric_key": "m"})
    assert history.get("metrics", []) == []
    assert "metrics" not in (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]


async def test_a_batch_of_metrics_alone(api: Api) -> None:
    run_id = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    metrics = [point(run_id, s, value=float(s), key=k) for k in ("a", "b") for s in (3, 1, 2)]
    metrics.append(point(run_id, 3, value=0.5, key="a"))  # same step and timestamp, smaller value
    await api.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    await api.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})  # a retry: no duplicates
    latest = (await api.get("runs/get", {"run_id": run_id}))["run"]["data"]["metrics"]
    assert latest == [{"key": "a", "value": 3.0, "timestamp": 1003, "step": 3},
                      {"key": "b", "value": 3.0, "timestamp": 1003, "step": 3}]
    history = (await api.get("metrics/get-history", {"run_id": run_id, "metric_key": "a"}))["metrics"]
    assert sorted((m["step"], m["value"]) for m in history) == [(1, 1.0), (2, 2.0), (3, 0.5), (3, 3.0)]
