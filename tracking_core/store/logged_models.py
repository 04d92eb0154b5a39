"""MLflow 3 logged models: the records every `mlflow.<flavor>.log_model` creates and finalises."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.authz.visibility import Visibility
from tracking_core.entities import LifecycleStage
from tracking_core.errors import invalid, not_found
from tracking_core.search import page_token
from tracking_core.search.logged_models import ModelOrder, select_logged_models
from tracking_core.store import experiments as experiment_queries
from tracking_core.store import tables
from tracking_core.store.clock import now_ms
from tracking_core.store.database import Database
from tracking_core.store.names import random_run_name
from tracking_core.store.run_render import number_out
from tracking_core.store.upsert import insert_ignore, upsert
from tracking_core.store.uris import join_uri

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

LM = tables.logged_models
PENDING = "LOGGED_MODEL_PENDING"
STATUSES = ("LOGGED_MODEL_STATUS_UNSPECIFIED", PENDING, "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def _info(row: Any, tags: list[dict[str, str]], registrations: list[dict[str, str]]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": row.model_id,
        "experiment_id": str(row.experiment_id),
        "name": row.name,
        "creation_timestamp_ms": row.creation_timestamp_ms,
        "last_updated_timestamp_ms": row.last_updated_timestamp_ms,
        "artifact_uri": row.artifact_location,
        "status": row.status,
        "model_type": row.model_type or "",
    }
    for optional in ("source_run_id", "status_message"):
        if getattr(row, optional):
            info[optional] = getattr(row, optional)
    if tags:
        info["tags"] = tags
    if registrations:
        info["registrations"] = registrations
    return info


async def load_models(conn: AsyncConnection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Full LoggedModel messages for `ids`, in that order, one query per child table."""
    if not ids:
        return []
    rows = {r.model_id: r for r in await conn.execute(sa.select(LM).where(LM.c.model_id.in_(ids)))}
    tags: dict[str, list[dict[str, str]]] = {}
    params: dict[str, list[dict[str, str]]] = {}
    for table, into in ((tables.logged_model_tags, tags), (tables.logged_model_params, params)):
        for kv in await conn.execute(sa.select(table).where(table.c.model_id.in_(ids)).order_by(table.c.key)):
            into.setdefault(kv.model_id, []).append({"key": kv.key, "value": kv.value})
    metrics: dict[str, list[dict[str, Any]]] = {}
    lmm = tables.logged_model_metrics
    for m in await conn.execute(
        sa.select(lmm).where(lmm.c.model_id.in_(ids)).order_by(lmm.c.key, lmm.c.step, lmm.c.timestamp)
    ):
        point = {"key": m.key, "value": number_out(m.value, m.is_nan), "timestamp": m.timestamp, "step": m.step,
                 "run_id": m.run_id, "model_id": m.model_id}
        if m.dataset_name:
            point.update(dataset_name=m.dataset_name, dataset_digest=m.dataset_digest)
        metrics.setdefault(m.model_id, []).append(point)
    registrations = await _registrations(conn, ids)
    out = []
    for model_id in ids:
        row = rows.get(model_id)
        if row is None:
            continue
        data = {k: v for k, v in (("params", params.get(model_id)), ("metrics", metrics.get(model_id))) if v}
        out.append({"info": _info(row, tags.get(model_id, []), registrations.get(model_id, [])), "data": data})
    return out


async def _registrations(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    mv, rm = tables.model_versions, tables.registered_models
    stmt = (
        sa.select(mv.c.model_id, rm.c.name, mv.c.version)
        .join(rm, rm.c.id == mv.c.registered_model_id)
        .where(mv.c.model_id.in_(ids), mv.c.deleted.is_(False))
        .order_by(rm.c.name, mv.c.version)
    )
    out: dict[str, list[dict[str, str]]] = {}
    for r in await conn.execute(stmt):
        out.setdefault(r.model_id, []).append({"name": r.name, "version": str(r.version)})
    return out


async def require_model(conn: AsyncConnection, model_id: str) -> Any:
    row = (await conn.execute(sa.select(LM).where(LM.c.model_id == model_id))).first()
    if row is None or row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return row


def validate_name(name: str) -> None:
    bad = [c for c in "/:.%\"'" if c in name]
    if bad:
        raise invalid(f"Invalid model name '{name}'. Names cannot contain any of the following characters: "
                      "'/', ':', '.', '%', '\"', \"'\".")


class LoggedModelStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        experiment_id: int,
        name: str | None,
        model_type: str | None,
        source_run_id: str | None,
        params: list[tuple[str, str]],
        tags: list[tuple[str, str]],
    ) -> dict[str, Any]:
        name = name or random_run_name()
        validate_name(name)
        model_id = f"m-{uuid.uuid4().hex}"
        now = now_ms()
        async with self.db.write() as conn:
            experiment = await experiment_queries.require_active(conn, experiment_id)
            await conn.execute(LM.insert().values(
                model_id=model_id,
                experiment_id=experiment_id,
                name=name,
                artifact_location=join_uri(experiment.artifact_location, "models", model_id, "artifacts"),
                creation_timestamp_ms=now,
                last_updated_timestamp_ms=now,
                status=PENDING,
                lifecycle_stage=LifecycleStage.ACTIVE.value,
                model_type=model_type,
                source_run_id=source_run_id,
                status_message=None,
            ))
            await insert_ignore(conn, tables.logged_model_params,
                                [{"model_id": model_id, "key": k, "value": v} for k, v in params])
            await upsert(conn, tables.logged_model_tags,
                         [{"model_id": model_id, "key": k, "value": v} for k, v in tags], ["value"])
            return (await load_models(conn, [model_id]))[0]

    async def get(self, model_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            await require_model(conn, model_id)
            return (await load_models(conn, [model_id]))[0]

    async def finalize(self, model_id: str, status: str) -> dict[str, Any]:
        async with self.db.write() as conn:
            await require_model(conn, model_id)
            await conn.execute(
                LM.update().where(LM.c.model_id == model_id).values(status=status, last_updated_timestamp_ms=now_ms())
            )
            return (await load_models(conn, [model_id]))[0]

    async def delete(self, model_id: str) -> None:
        async with self.db.write() as conn:
            await require_model(conn, model_id)
            await conn.execute(LM.update().where(LM.c.model_id == model_id).values(
                lifecycle_stage=LifecycleStage.DELETED.value, last_updated_timestamp_ms=now_ms()))

    async def set_tags(self, model_id: str, tags: list[tuple[str, str]]) -> None:
        async with self.db.write() as conn:
            await require_model(conn, model_id)
            await upsert(conn, tables.logged_model_tags,
                         [{"model_id": model_id, "key": k, "value": v} for k, v in tags], ["value"])

    async def delete_tag(self, model_id: str, key: str) -> None:
        t = tables.logged_model_tags
        async with self.db.write() as conn:
            await require_model(conn, model_id)
            deleted = await conn.execute(t.delete().where(t.c.model_id == model_id, t.c.key == key))
            if deleted.rowcount == 0:
                raise not_found(f"No tag with key '{key}' found for logged model '{model_id}'.")

    async def log_params(self, model_id: str, params: list[tuple[str, str]]) -> None:
        async with self.db.write() as conn:
            await require_model(conn, model_id)
            await upsert(conn, tables.logged_model_params,
                         [{"model_id": model_id, "key": k, "value": v} for k, v in params], ["value"])

    async def search(
        self,
        experiment_ids: list[int],
        filter_string: str | None,
        datasets: list[dict[str, Any]],
        order_by: list[ModelOrder],
        max_results: int,
        token: str | None,
        visible: Visibility | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """`visible`: only models in experiments the caller may read (None: all)."""
        if visible is not None:
            experiment_ids = visible.readable_experiments(experiment_ids)
        # A token is only valid for the query it came from, as in MLflow.
        scope = hashlib.sha256(json.dumps(
            [experiment_ids, filter_string, datasets, [o.__dict__ for o in order_by]], sort_keys=True
        ).encode()).hexdigest()[:16]
        offset = page_token.decode(token, scope)
        stmt = select_logged_models(experiment_ids=experiment_ids, filter_string=filter_string, datasets=datasets,
                                    order_by=order_by, limit=max_results + 1, offset=offset)
        async with self.db.read() as conn:
            ids = (await conn.execute(stmt)).scalars().all()
            models = await load_models(conn, ids[:max_results])
        return models, page_token.encode(offset + max_results, scope) if len(ids) > max_results else None
