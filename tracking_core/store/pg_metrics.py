"""PostgreSQL: logging metric points is one statement, and so one round trip.

`log_metric` (and a `log_batch` of metrics alone) needs the run's state, the points, the model
copies and the latest value per key. Sent as separate statements inside BEGIN/COMMIT that is five
round trips, each of them a network hop to Cloud SQL. Here one statement with data-modifying CTEs
reads the run and writes all three tables only if the run is active, atomically on its own (no
BEGIN/COMMIT), and returns the run's state so the caller can tell "not found" and "not active"
apart from success. The points travel as one array per column (`unnest`), whatever their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

_COLUMNS = ("key", "step", "timestamp", "value", "is_nan", "model_id", "dataset_name", "dataset_digest")
_TYPES = ("text", "bigint", "bigint", "float8", "boolean", "text", "text", "text")


def _unnest(prefix: str) -> str:
    arrays = ", ".join(f"CAST(:{prefix}_{c} AS {t}[])" for c, t in zip(_COLUMNS, _TYPES, strict=True))
    return f"SELECT * FROM unnest({arrays}) AS t({', '.join(_COLUMNS)})"


_LATEST_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])
LOG_METRICS = sa.text(f"""
WITH run AS (SELECT experiment_id, lifecycle_stage FROM runs WHERE run_id = :run_id),
live AS (SELECT experiment_id FROM run WHERE lifecycle_stage = 'active'),
points AS ({_unnest("p")}),
newest AS ({_unnest("n")}),
m AS (
    INSERT INTO metrics (run_id, {", ".join(_COLUMNS)})
    SELECT :run_id, points.* FROM points, live
    ON CONFLICT DO NOTHING
),
lm AS (
    INSERT INTO logged_model_metrics
        (model_id, key, timestamp, step, run_id, value, is_nan, experiment_id, dataset_name, dataset_digest)
    SELECT p.model_id, p.key, p.timestamp, p.step, :run_id, p.value, p.is_nan, live.experiment_id,
           p.dataset_name, p.dataset_digest
    FROM points p, live WHERE p.model_id IS NOT NULL
    ON CONFLICT DO NOTHING
),
l AS (
    INSERT INTO latest_metrics (run_id, {", ".join(_COLUMNS)})
    SELECT :run_id, newest.* FROM newest, live
    ON CONFLICT (run_id, key) DO UPDATE SET {_LATEST_SET}
    WHERE (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
        < (EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value)
)
SELECT experiment_id, lifecycle_stage FROM run
""")


def parameters(run_id: str, rows: Sequence[dict[str, Any]], newest: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The statement's parameters: each column of the points and of the newest point per key as an array."""
    bound: dict[str, Any] = {"run_id": run_id}
    for prefix, source in (("p", rows), ("n", newest)):
        for column in _COLUMNS:
            bound[f"{prefix}_{column}"] = [r[column] for r in source]
    return bound
