"""Runs: create, read (with params, tags, latest metrics, dataset inputs), update, delete, search."""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.authz.visibility import Visibility
from tracking_core.entities import LifecycleStage, RunStatus, ViewType
from tracking_core.errors import invalid, not_found
from tracking_core.search import page_token
from tracking_core.search.runs import select_runs
from tracking_core.store import experiments as experiment_queries
from tracking_core.store import pg_writes, run_json, tables
from tracking_core.store import sqlite_writes as sql
from tracking_core.store.clock import now_ms
from tracking_core.store.database import Database
from tracking_core.store.id_lists import chunks
from tracking_core.store.names import random_run_name
from tracking_core.store.rows import plain_rows
from tracking_core.store.run_render import render_info, render_metric
from tracking_core.store.sqlite_inline import driver as sqlite_driver
from tracking_core.store.upsert import upsert
from tracking_core.store.uris import join_uri

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

R = tables.runs
# The columns of `runs`, in table order, for rows read as plain tuples.
_RunRow = namedtuple("_RunRow", [c.name for c in R.c])  # type: ignore[misc]
RUN_NAME_TAG = "mlflow.runName"
# Statements of the hot paths, built once (building SQLAlchemy expressions per request is not free).
_INSERT_RUN = R.insert()
_INSERT_TAG = tables.run_tags.insert()
_RUN_BY_ID = sa.select(R).where(R.c.run_id == sa.bindparam("run_id"))


_IDS = sa.bindparam("ids", expanding=True)
_RUNS_BY_IDS = sa.select(R).where(R.c.run_id.in_(_IDS))
_PARAMS_OF, _TAGS_OF = (
    sa.select(t.c.run_id, t.c.key, t.c.value).where(t.c.run_id.in_(_IDS)).order_by(t.c.key)
    for t in (tables.params, tables.run_tags)
)
_LM = tables.latest_metrics.c
_LATEST_OF = (
    sa.select(_LM.run_id, _LM.key, _LM.step, _LM.timestamp, _LM.value, _LM.is_nan, _LM.model_id, _LM.dataset_name,
              _LM.dataset_digest)
    .where(tables.latest_metrics.c.run_id.in_(_IDS))
    .order_by(tables.latest_metrics.c.key)
)
_I = tables.inputs.c
# Every edge that touches the runs: datasets and models they used, models they produced.
_EDGES_OF = sa.select(_I.input_uuid, _I.source_type, _I.source_id, _I.destination_id, _I.step).where(
    sa.or_(
        sa.and_(_I.destination_type.in_(("RUN", "RUN_INPUT")), _I.destination_id.in_(_IDS)),
        sa.and_(_I.source_type == "RUN_OUTPUT", _I.source_id.in_(_IDS)),
    )
).order_by(_I.step, _I.source_id, _I.destination_id)
_D = tables.datasets
_DATASETS = sa.select(_D).where(_D.c.dataset_uuid.in_(sa.bindparam("uuids", expanding=True))).order_by(
    _D.c.name, _D.c.digest
)
_INPUT_TAGS = sa.select(tables.input_tags).where(
    tables.input_tags.c.input_uuid.in_(sa.bindparam("uuids", expanding=True))
)


async def load_runs(conn: AsyncConnection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Full Run messages for `ids`, in that order, with one query per child table (per chunk of ids)."""
    runs: list[dict[str, Any]] = []
    for chunk in chunks(ids):
        runs.extend(await _load_chunk(conn, chunk))
    return runs


async def _load_chunk(conn: AsyncConnection, ids: Sequence[str]) -> list[dict[str, Any]]:
    bound = {"ids": list(ids)}
    if conn.dialect.name == "sqlite":
        parts = await run_json.load_run_parts(conn, ids)
    else:
        parts = await _load_run_parts(conn, ids, bound)
    inputs, outputs = await _edges(conn, bound)
    return [
        {**part, "inputs": inputs.get(run_id, {}), "outputs": outputs.get(run_id, {})} for run_id, part in parts
    ]


async def _load_run_parts(
    conn: AsyncConnection, ids: Sequence[str], bound: dict[str, list[str]]
) -> list[tuple[str, dict[str, Any]]]:
    """(run_id, {"info", "data"}) for the runs of `ids` that exist, in that order (any backend)."""
    rows = {r[0]: r for r in await plain_rows(conn, _RUNS_BY_IDS, bound)}
    data: dict[str, dict[str, list[Any]]] = {i: {"metrics": [], "params": [], "tags": []} for i in rows}
    for stmt, field in ((_PARAMS_OF, "params"), (_TAGS_OF, "tags")):
        for run_id, key, value in await plain_rows(conn, stmt, bound):
            data[run_id][field].append({"key": key, "value": value})
    for run_id, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest in await plain_rows(
        conn, _LATEST_OF, bound
    ):
        data[run_id]["metrics"].append(render_metric(key, step, timestamp, value, is_nan, model_id, dataset_name,
                                                     dataset_digest))
    return [
        (run_id, {"info": render_info(_RunRow(*rows[run_id])), "data": {k: v for k, v in data[run_id].items() if v}})
        for run_id in ids
        if run_id in rows
    ]


async def _edges(
    conn: AsyncConnection, bound: dict[str, list[str]]
) -> tuple[dict[str, dict[str, list[Any]]], dict[str, dict[str, list[Any]]]]:
    """RunInputs (dataset_inputs, model_inputs) and RunOutputs (model_outputs) per run id."""
    inputs: dict[str, dict[str, list[Any]]] = {}
    outputs: dict[str, dict[str, list[Any]]] = {}
    dataset_edges = []
    for e in await conn.execute(_EDGES_OF, bound):
        if e.source_type == "DATASET":
            dataset_edges.append(e)
        elif e.source_type == "MODEL_INPUT":
            inputs.setdefault(e.destination_id, {}).setdefault("model_inputs", []).append({"model_id": e.source_id})
        else:
            outputs.setdefault(e.source_id, {}).setdefault("model_outputs", []).append(
                {"model_id": e.destination_id, "step": e.step})
    if not dataset_edges:
        return inputs, outputs
    datasets = {}
    for chunk in chunks(sorted({e.source_id for e in dataset_edges})):
        datasets.update((d.dataset_uuid, d) for d in await conn.execute(_DATASETS, {"uuids": chunk}))
    tags: dict[str, list[dict[str, str]]] = {}
    for chunk in chunks([e.input_uuid for e in dataset_edges]):
        for tag in await conn.execute(_INPUT_TAGS, {"uuids": chunk}):
            tags.setdefault(tag.input_uuid, []).append({"key": tag.name, "value": tag.value})
    rank = {uuid: i for i, uuid in enumerate(datasets)}  # the datasets' (name, digest) order
    for e in sorted(dataset_edges, key=lambda e: rank[e.source_id]):
        d = datasets[e.source_id]
        dataset = {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source}
        if d.schema is not None:
            dataset["schema"] = d.schema
        if d.profile is not None:
            dataset["profile"] = d.profile
        entry: dict[str, Any] = {"dataset": dataset}
        if e.input_uuid in tags:
            entry["tags"] = tags[e.input_uuid]
        inputs.setdefault(e.destination_id, {}).setdefault("dataset_inputs", []).append(entry)
    return inputs, outputs


_RUN_STATE = sa.select(R.c.experiment_id, R.c.lifecycle_stage).where(R.c.run_id == sa.bindparam("run_id"))


async def active_run(conn: AsyncConnection, run_id: str) -> int:
    """The experiment id of an active run, from two columns; the error `require_run` gives otherwise."""
    driver = sqlite_driver(conn)
    if driver is not None:
        row = sql.one(driver, sql.RUN_STATE, (run_id,))
    else:
        row = (await conn.execute(_RUN_STATE, {"run_id": run_id})).first()
    if row is None or row[1] != LifecycleStage.ACTIVE:
        await require_run(conn, run_id)  # raises the right error (rare: read the row only then)
    return int(row[0])


async def require_run(conn: AsyncConnection, run_id: str, *, active: bool = True) -> Any:
    row = (await conn.execute(_RUN_BY_ID, {"run_id": run_id})).first()
    if row is None:
        raise not_found(f"Run with id={run_id} not found")
    if active and row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise invalid(
            f"The run {run_id} must be in the 'active' state. Current state is {row.lifecycle_stage}."
        )
    return row


class RunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        experiment_id: int,
        user_id: str,
        run_name: str | None,
        start_time: int | None,
        tags: list[tuple[str, str]],
    ) -> dict[str, Any]:
        tag_map = dict(tags)
        tagged_name = tag_map.get(RUN_NAME_TAG)
        if run_name and tagged_name and run_name != tagged_name:
            raise invalid(
                f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                f"(run_name='{run_name}', mlflow.runName='{tagged_name}')."
            )
        name = run_name or tagged_name or random_run_name()
        tag_map[RUN_NAME_TAG] = name
        run_id = uuid.uuid4().hex
        row = {
            "run_id": run_id,
            "experiment_id": experiment_id,
            "name": name,
            "user_id": user_id,
            "status": RunStatus.RUNNING.value,
            "start_time": start_time if start_time is not None else now_ms(),
            "end_time": None,
            "deleted_time": None,
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
        }
        tag_rows = [{"run_id": run_id, "key": k, "value": v} for k, v in tag_map.items()]
        if self.db.dialect == "postgresql":
            await self._insert_pg(row, tag_map)
        else:
            await self._insert(row, tag_rows)
        # A new run has exactly what was just written; no need to read it back.
        tags = [{"key": t["key"], "value": t["value"]} for t in sorted(tag_rows, key=lambda t: t["key"])]
        return {"info": render_info(SimpleNamespace(**row)), "data": {"tags": tags}, "inputs": {}, "outputs": {}}

    async def _insert_pg(self, row: dict[str, Any], tags: dict[str, str]) -> None:
        """Two statements, no BEGIN/COMMIT (see pg_writes)."""
        experiment_id = row["experiment_id"]
        async with self.db.autocommit() as conn:
            experiment = (await conn.execute(pg_writes.EXPERIMENT_STATE, {"experiment_id": experiment_id})).first()
            if experiment is None or experiment[1] != LifecycleStage.ACTIVE:
                await experiment_queries.require_active(conn, experiment_id)  # raises the right error
            row["artifact_uri"] = join_uri(experiment[0], row["run_id"], "artifacts")
            bound = {**row, "tag_keys": list(tags), "tag_values": list(tags.values())}
            if await conn.scalar(pg_writes.CREATE_RUN, bound) == 0:
                await experiment_queries.require_active(conn, experiment_id)  # deleted meanwhile: raises

    async def _insert(self, row: dict[str, Any], tag_rows: list[dict[str, Any]]) -> None:
        experiment_id, run_id = row["experiment_id"], row["run_id"]
        async with self.db.write() as conn:
            driver = sqlite_driver(conn)
            if driver is not None:
                experiment = sql.one(driver, sql.EXPERIMENT_STATE, (experiment_id,))
                if experiment is None or experiment[1] != LifecycleStage.ACTIVE:
                    await experiment_queries.require_active(conn, experiment_id)  # raises the right error
                row["artifact_uri"] = join_uri(experiment[0], run_id, "artifacts")
                driver.execute(sql.INSERT_RUN, tuple(row[c] for c in _RunRow._fields))
                sql.many(driver, sql.INSERT_TAGS, [(run_id, t["key"], t["value"]) for t in tag_rows])
            else:
                experiment = await experiment_queries.require_active(conn, experiment_id)
                row["artifact_uri"] = join_uri(experiment.artifact_location, run_id, "artifacts")
                await conn.execute(_INSERT_RUN, row)
                await conn.execute(_INSERT_TAG, tag_rows)

    async def get(self, run_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            found = await load_runs(conn, [run_id])
        if not found:
            raise not_found(f"Run with id={run_id} not found")
        return found[0]

    async def update(
        self, run_id: str, status: RunStatus | None, end_time: int | None, run_name: str | None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status.value
        if end_time is not None:
            values["end_time"] = end_time
        if run_name:
            values["name"] = run_name
        async with self.db.write() as conn:
            await active_run(conn, run_id)
            driver = sqlite_driver(conn)
            if driver is not None:
                if run_name:
                    driver.execute(sql.UPSERT_TAGS, (run_id, RUN_NAME_TAG, run_name))
                if values:
                    sql.update_run(driver, run_id, values)
                return render_info(_RunRow(*sql.one(driver, sql.RUN_ROW, (run_id,))))
            if run_name:
                await upsert(conn, tables.run_tags, [{"run_id": run_id, "key": RUN_NAME_TAG, "value": run_name}],
                             ["value"])
            if values:
                await conn.execute(R.update().where(R.c.run_id == run_id).values(**values))
            row = await require_run(conn, run_id, active=False)
            return render_info(row)

    async def set_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        async with self.db.write() as conn:
            await require_run(conn, run_id, active=False)
            await conn.execute(
                R.update()
                .where(R.c.run_id == run_id)
                .values(lifecycle_stage=stage.value, deleted_time=now_ms() if stage == LifecycleStage.DELETED else None)
            )

    async def search(
        self,
        experiment_ids: list[int],
        filter_string: str | None,
        view_type: ViewType,
        order_by: list[str],
        max_results: int,
        token: str | None,
        visible: Visibility | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """`visible`: only runs of experiments the caller may read (None: all)."""
        offset = page_token.decode(token)
        if visible is not None:
            experiment_ids = visible.readable_experiments(experiment_ids)
        if not experiment_ids:
            return [], None
        stmt = select_runs(
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            view_type=view_type,
            order_by=order_by,
            limit=max_results + 1,
            offset=offset,
        )
        async with self.db.read() as conn:
            ids = (await conn.execute(stmt)).scalars().all()
            found = await load_runs(conn, ids[:max_results])
        return found, page_token.encode(offset + max_results) if len(ids) > max_results else None
