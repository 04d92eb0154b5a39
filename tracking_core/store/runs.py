"""Runs: create, read (with params, tags, latest metrics, dataset inputs), update, delete, search."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tracking_core.api.wire import number_out
from tracking_core.entities import LifecycleStage, RunStatus, ViewType
from tracking_core.errors import invalid, not_found
from tracking_core.search import page_token
from tracking_core.search.runs import select_runs
from tracking_core.store import experiments as experiment_queries
from tracking_core.store import tables
from tracking_core.store.clock import now_ms
from tracking_core.store.database import Database
from tracking_core.store.names import random_run_name
from tracking_core.store.schema import join_uri
from tracking_core.store.upsert import upsert

R = tables.runs
RUN_NAME_TAG = "mlflow.runName"


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


def _metric(m: Any) -> dict[str, Any]:
    out = {"key": m.key, "value": number_out(m.value, m.is_nan), "timestamp": m.timestamp, "step": m.step}
    for extra in ("dataset_name", "dataset_digest", "model_id"):
        if getattr(m, extra):
            out[extra] = getattr(m, extra)
    return out


async def load_runs(conn: AsyncConnection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Full Run messages for `ids`, in that order, with one query per child table."""
    if not ids:
        return []
    rows = {r.run_id: r for r in await conn.execute(sa.select(R).where(R.c.run_id.in_(ids)))}
    data: dict[str, dict[str, list[Any]]] = {i: {"metrics": [], "params": [], "tags": []} for i in rows}
    for table, field in ((tables.params, "params"), (tables.run_tags, "tags")):
        for kv in await conn.execute(sa.select(table).where(table.c.run_id.in_(ids)).order_by(table.c.key)):
            data[kv.run_id][field].append({"key": kv.key, "value": kv.value})
    latest = tables.latest_metrics
    for m in await conn.execute(sa.select(latest).where(latest.c.run_id.in_(ids)).order_by(latest.c.key)):
        data[m.run_id]["metrics"].append(_metric(m))
    inputs = await _dataset_inputs(conn, ids)
    model_edges = await _model_edges(conn, ids)
    runs = []
    for run_id in ids:
        row = rows.get(run_id)
        if row is None:
            continue
        run_inputs = {"dataset_inputs": inputs[run_id]} if run_id in inputs else {}
        edges = model_edges.get(run_id, {})
        if "model_inputs" in edges:
            run_inputs["model_inputs"] = edges["model_inputs"]
        run_outputs = {"model_outputs": edges["model_outputs"]} if "model_outputs" in edges else {}
        run_data = {k: v for k, v in data[run_id].items() if v}
        runs.append({"info": render_info(row), "data": run_data, "inputs": run_inputs, "outputs": run_outputs})
    return runs


async def _model_edges(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Logged models a run used (model_inputs) and produced (model_outputs)."""
    i = tables.inputs
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    produced = sa.select(i.c.source_id, i.c.destination_id, i.c.step).where(
        i.c.source_type == "RUN_OUTPUT", i.c.source_id.in_(ids), i.c.destination_type == "MODEL_OUTPUT")
    for r in await conn.execute(produced.order_by(i.c.step, i.c.destination_id)):
        out.setdefault(r.source_id, {}).setdefault("model_outputs", []).append(
            {"model_id": r.destination_id, "step": r.step})
    used = sa.select(i.c.source_id, i.c.destination_id).where(
        i.c.destination_type == "RUN_INPUT", i.c.destination_id.in_(ids), i.c.source_type == "MODEL_INPUT")
    for r in await conn.execute(used.order_by(i.c.source_id)):
        out.setdefault(r.destination_id, {}).setdefault("model_inputs", []).append({"model_id": r.source_id})
    return out


async def _dataset_inputs(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    i, d, t = tables.inputs, tables.datasets, tables.input_tags
    stmt = (
        sa.select(i.c.input_uuid, i.c.destination_id, d)
        .join(d, d.c.dataset_uuid == i.c.source_id)
        .where(i.c.source_type == "DATASET", i.c.destination_type == "RUN", i.c.destination_id.in_(ids))
        .order_by(d.c.name, d.c.digest)
    )
    found = list(await conn.execute(stmt))
    if not found:
        return {}
    tags: dict[str, list[dict[str, str]]] = {}
    tag_rows = await conn.execute(sa.select(t).where(t.c.input_uuid.in_([r.input_uuid for r in found])))
    for tag in tag_rows:
        tags.setdefault(tag.input_uuid, []).append({"key": tag.name, "value": tag.value})
    out: dict[str, list[dict[str, Any]]] = {}
    for r in found:
        dataset = {"name": r.name, "digest": r.digest, "source_type": r.source_type, "source": r.source}
        if r.schema is not None:
            dataset["schema"] = r.schema
        if r.profile is not None:
            dataset["profile"] = r.profile
        entry: dict[str, Any] = {"dataset": dataset}
        if r.input_uuid in tags:
            entry["tags"] = tags[r.input_uuid]
        out.setdefault(r.destination_id, []).append(entry)
    return out


async def require_run(conn: AsyncConnection, run_id: str, *, active: bool = True) -> Any:
    row = (await conn.execute(sa.select(R).where(R.c.run_id == run_id))).first()
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
        async with self.db.write() as conn:
            experiment = await experiment_queries.require_active(conn, experiment_id)
            await conn.execute(
                R.insert().values(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    name=name,
                    user_id=user_id,
                    status=RunStatus.RUNNING.value,
                    start_time=start_time if start_time is not None else now_ms(),
                    end_time=None,
                    deleted_time=None,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    artifact_uri=join_uri(experiment.artifact_location, run_id, "artifacts"),
                )
            )
            await conn.execute(
                tables.run_tags.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in tag_map.items()]
            )
            return (await load_runs(conn, [run_id]))[0]

    async def get(self, run_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            found = await load_runs(conn, [run_id])
        if not found:
            raise not_found(f"Run with id={run_id} not found")
        return found[0]

    async def update(
        self, run_id: str, status: RunStatus | None, end_time: int | None, run_name: str | None
    ) -> dict[str, Any]:
        async with self.db.write() as conn:
            await require_run(conn, run_id)
            values: dict[str, Any] = {}
            if status is not None:
                values["status"] = status.value
            if end_time is not None:
                values["end_time"] = end_time
            if run_name:
                values["name"] = run_name
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
    ) -> tuple[list[dict[str, Any]], str | None]:
        offset = page_token.decode(token)
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
            ids = list((await conn.execute(stmt)).scalars())
            found = await load_runs(conn, ids[:max_results])
        return found, page_token.encode(offset + max_results) if len(ids) > max_results else None
