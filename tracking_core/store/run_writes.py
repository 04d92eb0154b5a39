"""Writes to a run: metrics, params, tags, dataset inputs.

Every write is one transaction with multi-row statements, committed before the client hears 200,
and idempotent under the client's retries: an identical metric point, an identical param value
or a repeated tag is a no-op success. A batch is all-or-nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tracking_core.entities import MAX_DOUBLE, LifecycleStage
from tracking_core.errors import invalid, not_found
from tracking_core.store import pg_writes, tables
from tracking_core.store import sqlite_writes as sql
from tracking_core.store.database import Database
from tracking_core.store.logged_models import require_model
from tracking_core.store.runs import RUN_NAME_TAG, active_run, require_run
from tracking_core.store.sqlite_inline import driver as sqlite_driver
from tracking_core.store.upsert import insert_ignore, upsert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

P, M, L = tables.params, tables.metrics, tables.latest_metrics


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None

    def row(self, run_id: str) -> dict[str, Any]:
        nan = math.isnan(self.value)
        value = 0.0 if nan else max(-MAX_DOUBLE, min(MAX_DOUBLE, self.value))
        return {
            "run_id": run_id,
            "key": self.key,
            "step": self.step,
            "timestamp": self.timestamp,
            "value": value,
            "is_nan": nan,
            "model_id": self.model_id,
            "dataset_name": self.dataset_name,
            "dataset_digest": self.dataset_digest,
        }


def _newest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per key, the point MLflow shows as latest: the greatest (step, timestamp, value)."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        cur = best.get(r["key"])
        if cur is None or (r["step"], r["timestamp"], r["value"]) > (cur["step"], cur["timestamp"], cur["value"]):
            best[r["key"]] = r
    # Sorted keys give every transaction the same lock order (no deadlocks between batches).
    return [best[k] for k in sorted(best)]


_NEWER = sa.or_(
    L.c.step < sa.bindparam("b_step"),
    sa.and_(L.c.step == sa.bindparam("b_step"), L.c.timestamp < sa.bindparam("b_timestamp")),
    sa.and_(
        L.c.step == sa.bindparam("b_step"),
        L.c.timestamp == sa.bindparam("b_timestamp"),
        L.c.value < sa.bindparam("b_value"),
    ),
)
_UPDATE_LATEST = (
    L.update()
    .where(L.c.run_id == sa.bindparam("b_run_id"), L.c.key == sa.bindparam("b_key"), _NEWER)
    .values(
        step=sa.bindparam("b_step"),
        timestamp=sa.bindparam("b_timestamp"),
        value=sa.bindparam("b_value"),
        is_nan=sa.bindparam("b_is_nan"),
        model_id=sa.bindparam("b_model_id"),
        dataset_name=sa.bindparam("b_dataset_name"),
        dataset_digest=sa.bindparam("b_dataset_digest"),
    )
)
_LATEST_VALUES = ("step", "timestamp", "value", "is_nan", "model_id", "dataset_name", "dataset_digest")


def _pg_upsert_latest() -> Any:
    """PostgreSQL: insert the latest point or replace the stored one if the new one sorts after it,
    in one statement (and one round trip) instead of an insert and an update."""
    stmt = postgresql.insert(L)
    newer = sa.tuple_(L.c.step, L.c.timestamp, L.c.value) < sa.tuple_(
        stmt.excluded.step, stmt.excluded.timestamp, stmt.excluded.value)
    return stmt.on_conflict_do_update(
        index_elements=[L.c.run_id, L.c.key], set_={c: stmt.excluded[c] for c in _LATEST_VALUES}, where=newer)


_PG_UPSERT_LATEST = _pg_upsert_latest()


async def _write_latest(conn: AsyncConnection, newest: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(_PG_UPSERT_LATEST, newest)
        return
    await insert_ignore(conn, L, newest)
    await conn.execute(_UPDATE_LATEST, [{"b_" + k: v for k, v in r.items()} for r in newest])


async def _write_metrics(conn: AsyncConnection, run_id: str, experiment_id: int, points: list[MetricPoint]) -> None:
    if not points:
        return
    rows = [p.row(run_id) for p in points]
    # Points logged against a model are that model's metrics too (LoggedModel.data.metrics).
    model_rows = [
        {"model_id": r["model_id"], "key": r["key"], "timestamp": r["timestamp"], "step": r["step"],
         "run_id": r["run_id"], "value": r["value"], "is_nan": r["is_nan"], "experiment_id": experiment_id,
         "dataset_name": r["dataset_name"], "dataset_digest": r["dataset_digest"]}
        for r in rows if r["model_id"]
    ]
    newest = _newest(rows)
    driver = sqlite_driver(conn)
    if driver is not None:
        sql.many(driver, sql.INSERT_METRICS, sql.metric_tuples(rows))
        sql.many(driver, sql.INSERT_MODEL_METRICS, [tuple(r.values()) for r in model_rows])
        sql.many(driver, sql.UPSERT_LATEST, sql.metric_tuples(newest))
        return
    await insert_ignore(conn, M, rows)
    await insert_ignore(conn, tables.logged_model_metrics, model_rows)
    await _write_latest(conn, newest)


async def _write_params(conn: AsyncConnection, run_id: str, params: list[tuple[str, str]]) -> None:
    if not params:
        return
    keys = [k for k, _ in params]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise invalid(f"Duplicate parameter keys have been submitted: {duplicates}. Please ensure the request "
                      "contains only one param value per param key.")
    driver = sqlite_driver(conn)
    if driver is not None:
        existing = sql.params_of(driver, run_id, keys)
    else:
        logged = await conn.execute(sa.select(P.c.key, P.c.value).where(P.c.run_id == run_id, P.c.key.in_(keys)))
        existing = dict(logged.all())
    conflicts = [(k, existing[k], v) for k, v in params if k in existing and existing[k] != v]
    if conflicts:
        detail = ", ".join(f"key='{k}', old value='{old}', new value='{new}'" for k, old, new in conflicts)
        raise invalid(
            f"Changing param values is not allowed. Params were already logged for run ID='{run_id}' with "
            f"different values: [{detail}]."
        )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(params) if k not in existing]
    if driver is not None:
        sql.many(driver, sql.INSERT_PARAMS, [(run_id, r["key"], r["value"]) for r in new])
        return
    await insert_ignore(conn, P, new)


async def _write_tags(conn: AsyncConnection, run_id: str, tags: list[tuple[str, str]]) -> None:
    if not tags:
        return
    latest = dict(tags)  # the same key twice in one batch: the last value wins
    driver = sqlite_driver(conn)
    if driver is not None:
        sql.many(driver, sql.UPSERT_TAGS, [(run_id, k, v) for k, v in sorted(latest.items())])
        if RUN_NAME_TAG in latest:
            driver.execute(sql.RENAME_RUN, (latest[RUN_NAME_TAG], run_id))
        return
    await upsert(conn, tables.run_tags, [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(latest.items())],
                 ["value"])
    if RUN_NAME_TAG in latest:
        await conn.execute(tables.runs.update().where(tables.runs.c.run_id == run_id).values(name=latest[RUN_NAME_TAG]))


class RunLogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def log_batch(
        self,
        run_id: str,
        metrics: list[MetricPoint],
        params: list[tuple[str, str]],
        tags: list[tuple[str, str]],
    ) -> None:
        if metrics and not params and not tags and self.db.dialect == "postgresql":
            await self._log_metrics_pg(run_id, metrics)
            return
        async with self.db.write() as conn:
            experiment_id = await active_run(conn, run_id)
            await _write_params(conn, run_id, params)
            await _write_metrics(conn, run_id, experiment_id, metrics)
            await _write_tags(conn, run_id, tags)

    async def _log_metrics_pg(self, run_id: str, metrics: list[MetricPoint]) -> None:
        rows = [p.row(run_id) for p in metrics]
        # One atomic statement, so no BEGIN/COMMIT around it (see pg_writes).
        async with self.db.autocommit() as conn:
            bound = pg_writes.parameters(run_id, rows, _newest(rows))
            state = await pg_writes.log_metrics(conn, bound)
            if state is None or state[1] != LifecycleStage.ACTIVE:
                await require_run(conn, run_id)  # nothing was written; raises the error MLflow gives

    async def delete_tag(self, run_id: str, key: str) -> None:
        async with self.db.write() as conn:
            await require_run(conn, run_id)
            t = tables.run_tags
            deleted = await conn.execute(t.delete().where(t.c.run_id == run_id, t.c.key == key))
            if deleted.rowcount == 0:
                raise not_found(f"No tag with name: {key} in run with id {run_id}")

    async def log_outputs(self, run_id: str, models: list[tuple[str, int]]) -> None:
        """Record logged models as outputs of a run (what `log_model` inside a run does)."""
        async with self.db.write() as conn:
            await require_run(conn, run_id)
            for model_id, _ in models:
                await require_model(conn, model_id)
            await insert_ignore(conn, tables.inputs, [
                {"input_uuid": uuid.uuid4().hex, "source_type": "RUN_OUTPUT", "source_id": run_id,
                 "destination_type": "MODEL_OUTPUT", "destination_id": model_id, "step": step}
                for model_id, step in models
            ])

    async def log_inputs(self, run_id: str, datasets: list[dict[str, Any]], models: Sequence[str] = ()) -> None:
        """Attach datasets and models to a run; a dataset is stored once per experiment by (name, digest)."""
        d, i = tables.datasets, tables.inputs
        async with self.db.write() as conn:
            run = await require_run(conn, run_id)
            for model_id in models:
                await require_model(conn, model_id)
            await insert_ignore(conn, i, [
                {"input_uuid": uuid.uuid4().hex, "source_type": "MODEL_INPUT", "source_id": model_id,
                 "destination_type": "RUN_INPUT", "destination_id": run_id, "step": 0}
                for model_id in models
            ])
            for entry in datasets:
                ds = entry["dataset"]
                await insert_ignore(conn, d, [{
                    "dataset_uuid": uuid.uuid4().hex,
                    "experiment_id": run.experiment_id,
                    "name": ds["name"],
                    "digest": ds["digest"],
                    "source_type": ds["source_type"],
                    "source": ds["source"],
                    "schema": ds.get("schema"),
                    "profile": ds.get("profile"),
                }])
                dataset_uuid = await conn.scalar(sa.select(d.c.dataset_uuid).where(
                    d.c.experiment_id == run.experiment_id, d.c.name == ds["name"], d.c.digest == ds["digest"]))
                edge = {"source_type": "DATASET", "source_id": dataset_uuid, "destination_type": "RUN",
                        "destination_id": run_id}
                existing = await conn.scalar(sa.select(i.c.input_uuid).filter_by(**edge))
                if existing is not None:
                    continue
                input_uuid = uuid.uuid4().hex
                await conn.execute(i.insert().values(input_uuid=input_uuid, step=0, **edge))
                tag_rows = [{"input_uuid": input_uuid, "name": k, "value": v} for k, v in dict(entry["tags"]).items()]
                if tag_rows:
                    await conn.execute(tables.input_tags.insert(), tag_rows)
