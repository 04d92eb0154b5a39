"""The pieces of a Run message built in Python: its info, a latest metric, a metric value."""

from __future__ import annotations

import math
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


def number_out(value: float, is_nan: bool) -> float | str:
    """A double for a response: NaN travels as the string "NaN" (JSON has no NaN)."""
    if is_nan or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
