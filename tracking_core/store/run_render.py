"""The pieces of a Run message built in Python: its info and a latest metric."""

from __future__ import annotations

from typing import Any


def render_info(row: Any) -> dict[str, Any]:
    info = {
        "run_id": row.run_id,
        "run_uuid": row.run_id,
        "run_name": row.name,
        "experiment_id": str(row.experiment_id),
        "user_id": row.user_id,
        "status": row.status,
        "start_time": row.start_time,
        "artifact_uri": row.artifact_uri,
        "lifecycle_stage": row.lifecycle_stage,
    }
    if row.end_time is not None:
        info["end_time"] = row.end_time
    return info


def render_metric(
    key: str,
    step: int,
    timestamp: int,
    value: float,
    is_nan: Any,
    model_id: str | None,
    dataset_name: str | None,
    dataset_digest: str | None,
) -> dict[str, Any]:
    metric = {"key": key, "value": "NaN" if is_nan else value, "timestamp": timestamp, "step": step}
    if model_id or dataset_name:  # MLflow 3 extras, rare
        extras = {"dataset_name": dataset_name, "dataset_digest": dataset_digest, "model_id": model_id}
        metric.update({k: v for k, v in extras.items() if v})
    return metric
