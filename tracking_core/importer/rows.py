"""What the importer moves: the entities in write order, and the shape of a batch.

A source (SQL database or `./mlruns`) yields batches of rows already shaped like trackgate's
tables (tracking_core/store/tables.py), so the writer never knows where they came from. Registry
rows carry the model `name`; the writer turns it into trackgate's surrogate registered_model_id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

Row = dict[str, Any]
Batch = list[Row]

# Parents before children, so every foreign key already points at a row. Metric histories come
# last and apart (`Source.metrics`): they are the bulk of any installation, and resume by run.
ENTITIES: tuple[str, ...] = (
    "experiments",
    "experiment_tags",
    "runs",
    "run_tags",
    "params",
    "latest_metrics",
    "datasets",
    "inputs",
    "input_tags",
    "logged_models",
    "logged_model_params",
    "logged_model_tags",
    "logged_model_metrics",
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
)

# A metric point travels as a plain tuple in this column order: 100M of them must not each build
# a dict or a SQLAlchemy parameter set.
METRIC_COLUMNS = ("run_id", "key", "step", "timestamp", "value", "is_nan")
MetricPoint = tuple[str, str, int, int, float, bool]
RUNS_PER_CHUNK = 1_000  # runs whose metric counts are compared (and copied) together

# MLflow's LoggedModelStatus enum values, by number (MLflow stores the number).
LOGGED_MODEL_STATUSES = (
    "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
)

# MLflow marks a deleted model version with this stage; trackgate keeps a `deleted` tombstone.
STAGE_DELETED_INTERNAL = "Deleted_Internal"


class Source(Protocol):
    """Where the rows come from. Batches are bounded (`batch_size` rows) so memory stays flat."""

    description: str  # what to call the source in messages (URI masked, or a path)
    unique_points: bool  # no point twice in one run (then PostgreSQL may COPY a new run's points straight in)
    revision: str  # MLflow schema revision, or "file store"
    batch_size: int

    async def count(self, entity: str) -> int: ...

    def batches(self, entity: str) -> AsyncIterator[Batch]: ...

    def metric_counts(self) -> AsyncIterator[list[tuple[str, int]]]:
        """(run id, number of metric points) of every run with points, in chunks of runs."""
        ...

    def metrics(self, run_ids: list[str]) -> AsyncIterator[list[MetricPoint]]:
        """Every metric point (METRIC_COLUMNS) of these runs, in batches."""
        ...


def logged_model_status(value: Any) -> str:
    if isinstance(value, int) and 0 <= value < len(LOGGED_MODEL_STATUSES):
        return LOGGED_MODEL_STATUSES[value]
    return str(value) if value is not None else LOGGED_MODEL_STATUSES[0]
