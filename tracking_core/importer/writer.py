"""Writing imported rows into a trackgate database: checked first, then idempotent batches.

Idempotence is what makes the import resumable: every row is keyed by its source id (experiment
and run ids are kept), written with "insert or ignore" / "insert or update", and committed batch by
batch; a rerun writes the same keys again and nothing doubles. A target row with the same id but a
different identity (another experiment 3, another run with that id) is a clash: `clashes` lists
them all before anything is written, and the import refuses.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracking_core.importer import pg_metrics
from tracking_core.importer.detect import ImportRefused
from tracking_core.importer.rows import METRIC_COLUMNS, Batch, MetricPoint, Row, Source
from tracking_core.store import tables
from tracking_core.store.id_lists import chunks
from tracking_core.store.upsert import insert_ignore, upsert

E, R, LM, RM = tables.experiments, tables.runs, tables.logged_models, tables.registered_models
MAX_CLASHES_SHOWN = 10

# entity -> (target table, columns a re-import refreshes; None = insert or ignore)
_WRITES: dict[str, tuple[sa.Table, tuple[str, ...] | None]] = {
    "experiments": (E, ("name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time")),
    "experiment_tags": (tables.experiment_tags, ("value",)),
    "runs": (R, ("name", "user_id", "status", "end_time", "deleted_time", "lifecycle_stage", "artifact_uri")),
    "run_tags": (tables.run_tags, ("value",)),
    "params": (tables.params, None),
    "latest_metrics": (tables.latest_metrics, ("step", "timestamp", "value", "is_nan")),
    "datasets": (tables.datasets, None),
    "inputs": (tables.inputs, None),
    "input_tags": (tables.input_tags, None),
    "logged_models": (LM, ("name", "last_updated_timestamp_ms", "status", "lifecycle_stage", "status_message")),
    "logged_model_params": (tables.logged_model_params, None),
    "logged_model_tags": (tables.logged_model_tags, ("value",)),
    "logged_model_metrics": (tables.logged_model_metrics, None),
    "registered_models": (RM, None),
    "registered_model_tags": (tables.registered_model_tags, ("value",)),
    "model_versions": (
        tables.model_versions,
        ("last_updated_time", "description", "current_stage", "status", "status_message", "deleted"),
    ),
    "model_version_tags": (tables.model_version_tags, ("value",)),
    "registered_model_aliases": (tables.registered_model_aliases, ("version",)),
}

_BY_NAME = {"registered_model_tags", "model_versions", "model_version_tags", "registered_model_aliases"}


async def _identities(
    conn: AsyncConnection, key: sa.Column[Any], columns: Sequence[sa.Column[Any]], values: list[Any]
) -> dict[Any, tuple[Any, ...]]:
    found: dict[Any, tuple[Any, ...]] = {}
    for chunk in chunks(values):
        for row in await conn.execute(sa.select(key, *columns).where(key.in_(chunk))):
            found[row[0]] = tuple(row[1:])
    return found


class Target:
    """A trackgate database that is being imported into (its schema already current)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._model_ids: dict[str, int] = {}
        self._skip_key_checks: bool | None = None  # PostgreSQL: probed on first use (pg_metrics)

    async def _begin(self, conn: AsyncConnection) -> None:
        if self.dialect in ("mysql", "mariadb"):
            # Else MySQL reads an explicit experiment id 0 as "next AUTO_INCREMENT value".
            await conn.execute(sa.text("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"))

    async def clashes(self, source: Source) -> list[str]:
        """Every way the source's ids collide with different entities already in the target."""
        problems: list[str] = []
        async with self.engine.connect() as conn:
            async for batch in source.batches("experiments"):
                await self._experiment_clashes(conn, batch, problems)
            async for batch in source.batches("runs"):
                found = await _identities(
                    conn, R.c.run_id, [R.c.experiment_id, R.c.start_time], [r["run_id"] for r in batch]
                )
                for r in batch:
                    mine = found.get(r["run_id"])
                    if mine is not None and mine != (r["experiment_id"], r["start_time"]):
                        problems.append(f"run {r['run_id']} exists (in experiment {mine[0]}, started {mine[1]})")
            async for batch in source.batches("logged_models"):
                found = await _identities(
                    conn,
                    LM.c.model_id,
                    [LM.c.experiment_id, LM.c.creation_timestamp_ms],
                    [r["model_id"] for r in batch],
                )
                for r in batch:
                    mine = found.get(r["model_id"])
                    if mine is not None and mine != (r["experiment_id"], r["creation_timestamp_ms"]):
                        problems.append(f"logged model {r['model_id']} exists with another experiment or creation time")
            async for batch in source.batches("registered_models"):
                found = await _identities(conn, RM.c.name, [RM.c.creation_time], [r["name"] for r in batch])
                for r in batch:
                    mine = found.get(r["name"])
                    if mine is not None and mine != (r["creation_time"],):
                        problems.append(f"registered model {r['name']!r} exists (created {mine[0]})")
        return problems

    async def _experiment_clashes(self, conn: AsyncConnection, batch: Batch, problems: list[str]) -> None:
        # An experiment is known by its creation time and artifact location, which MLflow never
        # changes; its name may have changed since an earlier import (a rename is refreshed).
        by_id = await _identities(
            conn,
            E.c.experiment_id,
            [E.c.creation_time, E.c.artifact_location, E.c.name],
            [r["experiment_id"] for r in batch],
        )
        by_name = await _identities(conn, E.c.name, [E.c.experiment_id], [r["name"] for r in batch])
        for r in batch:
            mine = by_id.get(r["experiment_id"])
            same = mine is not None and mine[:2] == (r["creation_time"], r["artifact_location"])
            if mine is not None and not same and not await self._replaceable(conn, r):
                problems.append(f"experiment {r['experiment_id']} exists as {mine[2]!r}")
            other = by_name.get(r["name"])
            if other is not None and other[0] != r["experiment_id"]:
                problems.append(f"an experiment named {r['name']!r} exists with id {other[0]}")

    @staticmethod
    async def _replaceable(conn: AsyncConnection, r: Row) -> bool:
        """The Default experiment a fresh trackgate database made, still empty, gives way to MLflow's."""
        if r["experiment_id"] != 0:
            return False
        name = await conn.scalar(sa.select(E.c.name).where(E.c.experiment_id == 0))
        used = await conn.scalar(sa.select(R.c.run_id).where(R.c.experiment_id == 0).limit(1))
        return name == r["name"] == "Default" and used is None

    async def write(self, entity: str, batch: Batch) -> None:
        """One batch, one transaction: committed work survives an interrupted import."""
        table, refresh = _WRITES[entity]
        async with self.engine.begin() as conn:
            await self._begin(conn)
            if entity in _BY_NAME:
                batch = await self._with_model_ids(conn, batch)
            if refresh is None:
                await insert_ignore(conn, table, batch)
            else:
                await upsert(conn, table, batch, refresh)

    async def write_metrics(self, points: list[MetricPoint], *, fresh: bool = False) -> None:
        """Metric points straight to the driver (executemany, or COPY on PostgreSQL): no per-row
        parameter building, which otherwise costs more than the database's own work. `fresh`:
        none of these points can be in the target yet, so PostgreSQL COPies them without the
        duplicate-skipping detour."""
        skip = self.dialect == "postgresql" and await self._may_skip_key_checks()
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await pg_metrics.write_records(await self._raw(conn), points, fresh, skip)
            else:
                await conn.exec_driver_sql(self._metrics_sql, points)  # type: ignore[arg-type]

    async def pipe_metrics(self, source_raw: Any, run_ids: list[str], *, fresh: bool) -> int:
        """PostgreSQL to PostgreSQL: the points of `run_ids` COPied from the source connection, in
        one transaction (pg_metrics.pipe)."""
        skip = await self._may_skip_key_checks()
        async with self.engine.begin() as conn:
            return await pg_metrics.pipe(source_raw, await self._raw(conn), run_ids, fresh, skip)

    @staticmethod
    async def _raw(conn: AsyncConnection) -> Any:
        """The asyncpg connection, inside the transaction SQLAlchemy opened."""
        await conn.execute(sa.text("SELECT 1"))  # opens the transaction the raw statements join
        return (await conn.get_raw_connection()).driver_connection

    async def _may_skip_key_checks(self) -> bool:
        if self._skip_key_checks is None:
            async with self.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                self._skip_key_checks = await pg_metrics.may_skip_key_checks(raw)
        return self._skip_key_checks

    @functools.cached_property
    def _metrics_sql(self) -> str:
        quote = self.engine.dialect.identifier_preparer.quote  # `key` is reserved on MySQL
        columns = ", ".join(quote(c) for c in METRIC_COLUMNS)
        marks = {
            "qmark": ["?"] * len(METRIC_COLUMNS),
            "numeric_dollar": [f"${i + 1}" for i in range(len(METRIC_COLUMNS))],
            "format": ["%s"] * len(METRIC_COLUMNS),
            "pyformat": ["%s"] * len(METRIC_COLUMNS),
        }[self.engine.dialect.paramstyle]
        values = f"INTO metrics ({columns}) VALUES ({', '.join(marks)})"
        if self.dialect == "sqlite":
            return "INSERT OR IGNORE " + values
        if self.dialect == "postgresql":
            return f"INSERT {values} ON CONFLICT DO NOTHING"
        if self.dialect in ("mysql", "mariadb"):
            return "INSERT IGNORE " + values
        raise ImportRefused(f"Importing into a {self.dialect} database is not supported.")

    async def _with_model_ids(self, conn: AsyncConnection, batch: Batch) -> Batch:
        missing = sorted({r["name"] for r in batch} - self._model_ids.keys())
        for chunk in chunks(missing):
            for row in await conn.execute(sa.select(RM.c.name, RM.c.id).where(RM.c.name.in_(chunk))):
                self._model_ids[row.name] = row.id
        out = []
        for r in batch:
            row = {k: v for k, v in r.items() if k != "name"}
            row["registered_model_id"] = self._model_ids[r["name"]]
            out.append(row)
        return out

    async def metric_counts(self, run_ids: list[str]) -> dict[str, int]:
        """How many points the target holds for each of `run_ids` that it has as a run (a run
        it lacks is absent from the answer)."""
        m, runs = tables.metrics, tables.runs
        points = sa.select(sa.func.count()).where(m.c.run_id == runs.c.run_id).scalar_subquery()
        found: dict[str, int] = {}
        async with self.engine.connect() as conn:
            for ids in chunks(run_ids):
                for run_id, count in await conn.execute(sa.select(runs.c.run_id, points).where(runs.c.run_id.in_(ids))):
                    found[run_id] = int(count)
        return found

    async def finish(self) -> None:
        """Experiment ids were written explicitly; PostgreSQL's sequence must move past them."""
        if self.dialect != "postgresql":
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                    "GREATEST((SELECT MAX(experiment_id) FROM experiments), 1))"
                )
            )
