"""Reading an MLflow SQL database (SQLite, PostgreSQL, MySQL/MariaDB) with plain SQL.

Tables are reflected, not imported from the `mlflow` package: the shapes differ between MLflow
releases (a column added here, a table there), and reflection reads whatever this database has.
Every query streams (server-side cursor, fixed-size partitions), so a 100M-point metrics table
never sits in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tracking_core.importer.detect import ImportRefused, mlflow_revision
from tracking_core.importer.rows import (
    RUNS_PER_CHUNK,
    STAGE_DELETED_INTERNAL,
    Batch,
    MetricPoint,
    Row,
    logged_model_status,
)

Convert = Callable[[Any], Row]


def _experiment(r: Any) -> Row:
    return {
        "experiment_id": int(r.experiment_id),
        "name": r.name,
        "artifact_location": r.artifact_location or "",
        "lifecycle_stage": r.lifecycle_stage or "active",
        "creation_time": r.creation_time or 0,
        "last_update_time": r.last_update_time or r.creation_time or 0,
    }


def _run(r: Any) -> Row:
    return {
        "run_id": r.run_uuid,
        "experiment_id": int(r.experiment_id),
        "name": r.name or "",
        "user_id": r.user_id or "",
        "status": r.status or "RUNNING",
        "start_time": r.start_time or 0,
        "end_time": r.end_time,
        "deleted_time": _get(r, "deleted_time"),
        "lifecycle_stage": r.lifecycle_stage or "active",
        "artifact_uri": r.artifact_uri or "",
    }


def _key_value(id_column: str, target_id: str) -> Convert:
    def convert(r: Any) -> Row:
        return {target_id: getattr(r, id_column), "key": r.key, "value": r.value if r.value is not None else ""}

    return convert


def _latest_metric(r: Any) -> Row:
    return {
        "run_id": r.run_uuid,
        "key": r.key,
        "step": r.step or 0,
        "timestamp": r.timestamp or 0,
        "value": float(r.value),
        "is_nan": bool(r.is_nan),
    }


def _dataset(r: Any) -> Row:
    return {
        "dataset_uuid": r.dataset_uuid,
        "experiment_id": int(r.experiment_id),
        "name": r.name,
        "digest": r.digest,
        "source_type": r.dataset_source_type,
        "source": r.dataset_source,
        "schema": r.dataset_schema,
        "profile": r.dataset_profile,
    }


def _input(r: Any) -> Row:
    return {
        "input_uuid": r.input_uuid,
        "source_type": r.source_type,
        "source_id": r.source_id,
        "destination_type": r.destination_type,
        "destination_id": r.destination_id,
        "step": _get(r, "step") or 0,
    }


def _input_tag(r: Any) -> Row:
    return {"input_uuid": r.input_uuid, "name": r.name, "value": r.value}


def _logged_model(r: Any) -> Row:
    return {
        "model_id": r.model_id,
        "experiment_id": int(r.experiment_id),
        "name": r.name,
        "artifact_location": r.artifact_location,
        "creation_timestamp_ms": r.creation_timestamp_ms,
        "last_updated_timestamp_ms": r.last_updated_timestamp_ms,
        "status": logged_model_status(r.status),
        "lifecycle_stage": r.lifecycle_stage or "active",
        "model_type": r.model_type,
        "source_run_id": r.source_run_id,
        "status_message": r.status_message,
    }


def _logged_model_param(r: Any) -> Row:
    return {"model_id": r.model_id, "key": r.param_key, "value": r.param_value}


def _logged_model_tag(r: Any) -> Row:
    return {"model_id": r.model_id, "key": r.tag_key, "value": r.tag_value}


def _logged_model_metric(r: Any) -> Row:
    # MLflow keeps a NaN model metric as NULL; trackgate as value 0 with is_nan set.
    return {
        "model_id": r.model_id,
        "key": r.metric_name,
        "timestamp": r.metric_timestamp_ms,
        "step": r.metric_step,
        "run_id": r.run_id,
        "value": float(r.metric_value) if r.metric_value is not None else 0.0,
        "is_nan": r.metric_value is None,
        "experiment_id": int(r.experiment_id),
        "dataset_name": r.dataset_name,
        "dataset_digest": r.dataset_digest,
    }


def _registered_model(r: Any) -> Row:
    return {
        "name": r.name,
        "creation_time": r.creation_time or 0,
        "last_updated_time": r.last_updated_time or r.creation_time or 0,
        "description": r.description,
    }


def _model_version(r: Any) -> Row:
    deleted = r.current_stage == STAGE_DELETED_INTERNAL
    return {
        "name": r.name,
        "version": int(r.version),
        "creation_time": r.creation_time or 0,
        "last_updated_time": r.last_updated_time or r.creation_time or 0,
        "description": r.description,
        "user_id": r.user_id,
        "current_stage": "None" if deleted else (r.current_stage or "None"),
        "source": r.source,
        "run_id": r.run_id,
        "run_link": r.run_link,
        "status": r.status or "READY",
        "status_message": r.status_message,
        "storage_location": _get(r, "storage_location"),
        "deleted": deleted,
    }


def _registered_model_tag(r: Any) -> Row:
    return {"name": r.name, "key": r.key, "value": r.value if r.value is not None else ""}


def _model_version_tag(r: Any) -> Row:
    return {"name": r.name, "version": int(r.version), "key": r.key, "value": r.value if r.value is not None else ""}


def _alias(r: Any) -> Row:
    return {"name": r.name, "alias": r.alias, "version": int(r.version)}


def _as_float(_inspector: Any, _table: Any, column: dict[str, Any]) -> None:
    """Read floating-point columns as Python floats: SQLAlchemy's MySQL DOUBLE would return a
    Decimal rounded to 10 places, losing digits of every metric value."""
    if isinstance(column["type"], sa.Float | sa.Numeric) and not isinstance(column["type"], sa.Integer):
        column["type"] = sa.Double()


def _get(r: Any, column: str) -> Any:
    return r._mapping.get(column)


# entity -> (MLflow table, row converter, ordering columns)
_SPECS: dict[str, tuple[str, Convert, tuple[str, ...]]] = {
    "experiments": ("experiments", _experiment, ("experiment_id",)),
    "experiment_tags": ("experiment_tags", _key_value("experiment_id", "experiment_id"), ()),
    "runs": ("runs", _run, ()),
    "run_tags": ("tags", _key_value("run_uuid", "run_id"), ()),
    "params": ("params", _key_value("run_uuid", "run_id"), ()),
    "latest_metrics": ("latest_metrics", _latest_metric, ()),
    "datasets": ("datasets", _dataset, ()),
    "inputs": ("inputs", _input, ()),
    "input_tags": ("input_tags", _input_tag, ()),
    "logged_models": ("logged_models", _logged_model, ()),
    "logged_model_params": ("logged_model_params", _logged_model_param, ()),
    "logged_model_tags": ("logged_model_tags", _logged_model_tag, ()),
    "logged_model_metrics": ("logged_model_metrics", _logged_model_metric, ()),
    "registered_models": ("registered_models", _registered_model, ()),
    "registered_model_tags": ("registered_model_tags", _registered_model_tag, ()),
    "model_versions": ("model_versions", _model_version, ("name", "version")),
    "model_version_tags": ("model_version_tags", _model_version_tag, ()),
    "registered_model_aliases": ("registered_model_aliases", _alias, ()),
}


class SqlSource:
    """An MLflow database, read through one open connection (`await SqlSource.open(...)`)."""

    unique_points = True  # MLflow's metrics table is keyed by the whole point

    def __init__(self, conn: AsyncConnection, description: str, batch_size: int) -> None:
        self.conn = conn
        self.description = description
        self.batch_size = batch_size
        self.revision = ""
        self._names: set[str] = set()
        self._tables: dict[str, sa.Table] = {}
        self._metadata = sa.MetaData()

    @classmethod
    async def open(cls, conn: AsyncConnection, description: str, batch_size: int) -> SqlSource:
        source = cls(conn, description, batch_size)
        source.revision = await conn.run_sync(mlflow_revision)
        source._names = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
        await source._refuse_other_workspaces()
        return source

    async def _table(self, name: str) -> sa.Table | None:
        if name not in self._names:
            return None  # an older MLflow: the entity did not exist yet
        if name not in self._tables:
            self._tables[name] = await self.conn.run_sync(
                lambda c: sa.Table(name, self._metadata, autoload_with=c, listeners=[("column_reflect", _as_float)])
            )
        return self._tables[name]

    async def _refuse_other_workspaces(self) -> None:
        # MLflow 3 workspaces share one database; trackgate has one namespace, so names could clash.
        table = await self._table("experiments")
        if table is None or "workspace" not in table.c:
            return
        found = await self.conn.execute(sa.select(table.c.workspace).distinct().where(table.c.workspace != "default"))
        others = [str(w) for w in found.scalars()]
        if others:
            raise ImportRefused(
                f"The source uses MLflow workspaces other than 'default' ({', '.join(sorted(others))}); "
                "trackgate has a single namespace, so these cannot be imported as they are."
            )

    async def count(self, entity: str) -> int:
        table = await self._table("metrics" if entity == "metrics" else _SPECS[entity][0])
        if table is None:
            return 0
        return int(await self.conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)

    async def _stream(self, query: sa.Select[Any]) -> AsyncIterator[Sequence[Any]]:
        result = await self.conn.stream(query)
        try:
            async for part in result.partitions(self.batch_size):
                yield part
        finally:
            await result.close()

    async def batches(self, entity: str) -> AsyncIterator[Batch]:
        name, convert, order = _SPECS[entity]
        table = await self._table(name)
        if table is None:
            return
        async for part in self._stream(sa.select(table).order_by(*(table.c[c] for c in order))):
            yield [convert(r) for r in part]

    async def metric_counts(self) -> AsyncIterator[list[tuple[str, int]]]:
        m = await self._table("metrics")
        if m is None:
            return
        # Page by page (keyset on the run_uuid index), each page read whole: no cursor stays open
        # while the caller copies, which MySQL's one-result-at-a-time protocol would not allow.
        query = sa.select(m.c.run_uuid, sa.func.count()).group_by(m.c.run_uuid).order_by(m.c.run_uuid)
        last: str | None = None
        while True:
            page = query if last is None else query.where(m.c.run_uuid > last)
            rows = (await self.conn.execute(page.limit(RUNS_PER_CHUNK))).all()
            if not rows:
                return
            yield [(r[0], int(r[1])) for r in rows]
            last = rows[-1][0]

    async def metrics(self, run_ids: list[str]) -> AsyncIterator[list[MetricPoint]]:
        m = await self._table("metrics")
        assert m is not None
        query = sa.select(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
        # The run_uuid index (MLflow has one since 2.x) serves this without a scan.
        async for part in self._stream(query.where(m.c.run_uuid.in_(run_ids)).order_by(m.c.run_uuid)):
            # float(): should a column be a true DECIMAL after all.
            yield [(r[0], r[1], r[2], r[3], float(r[4]), bool(r[5])) for r in part]

    async def postgresql_connection(self) -> Any:
        """The asyncpg connection under this source, when it is PostgreSQL (for pg_metrics.pipe)."""
        if self.conn.dialect.name != "postgresql":
            return None
        return (await self.conn.get_raw_connection()).driver_connection
