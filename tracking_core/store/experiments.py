"""Experiments: create, read, search, rename, delete/restore, tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.authz.visibility import Visibility
from tracking_core.authz.visibility import where as authz_where
from tracking_core.entities import LifecycleStage, ViewType
from tracking_core.errors import ErrorCode, MlflowError, already_exists, invalid, not_found
from tracking_core.search import page_token
from tracking_core.search.experiments import select_experiments
from tracking_core.store import tables
from tracking_core.store.clock import now_ms
from tracking_core.store.database import Database
from tracking_core.store.id_lists import chunks
from tracking_core.store.upsert import upsert
from tracking_core.store.uris import join_uri

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

E = tables.experiments
T = tables.experiment_tags


def _render(row: sa.Row[Any], tags: list[dict[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": str(row.experiment_id),
        "name": row.name,
        "artifact_location": row.artifact_location,
        "lifecycle_stage": row.lifecycle_stage,
        "last_update_time": row.last_update_time,
        "creation_time": row.creation_time,
    }
    if tags:
        out["tags"] = tags
    return out


async def _load(conn: AsyncConnection, ids: Sequence[int]) -> list[dict[str, Any]]:
    rows: dict[int, Any] = {}
    tags: dict[int, list[dict[str, str]]] = {}
    for chunk in chunks(ids):
        rows.update((r.experiment_id, r) for r in await conn.execute(sa.select(E).where(E.c.experiment_id.in_(chunk))))
        for t in await conn.execute(sa.select(T).where(T.c.experiment_id.in_(chunk)).order_by(T.c.key)):
            tags.setdefault(t.experiment_id, []).append({"key": t.key, "value": t.value})
    return [_render(rows[i], tags.get(i, [])) for i in ids if i in rows]


_BY_ID = sa.select(E).where(E.c.experiment_id == sa.bindparam("experiment_id"))


async def _row(conn: AsyncConnection, experiment_id: int) -> sa.Row[Any]:
    row = (await conn.execute(_BY_ID, {"experiment_id": experiment_id})).first()
    if row is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return row


async def require_active(conn: AsyncConnection, experiment_id: int) -> sa.Row[Any]:
    row = await _row(conn, experiment_id)
    if row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise invalid(f"The experiment {experiment_id} must be in the 'active' state. "
                      f"Current state is {row.lifecycle_stage}.")
    return row


class ExperimentStore:
    def __init__(self, db: Database, default_artifact_root: str) -> None:
        self.db = db
        self.default_artifact_root = default_artifact_root

    async def create(self, name: str, artifact_location: str | None, tags: list[tuple[str, str]]) -> str:
        now = now_ms()
        async with self.db.write() as conn:
            if await conn.scalar(sa.select(E.c.experiment_id).where(E.c.name == name)) is not None:
                raise already_exists(f"Experiment(name={name}) already exists.")
            try:
                result = await conn.execute(
                    E.insert().values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=LifecycleStage.ACTIVE.value,
                        creation_time=now,
                        last_update_time=now,
                    )
                )
            except sa.exc.IntegrityError:
                # A concurrent create of the same name won the race.
                raise already_exists(f"Experiment(name={name}) already exists.") from None
            experiment_id = result.inserted_primary_key[0]
            if not artifact_location:
                location = join_uri(self.default_artifact_root, str(experiment_id))
                await conn.execute(
                    E.update().where(E.c.experiment_id == experiment_id).values(artifact_location=location)
                )
            if tags:
                await conn.execute(
                    T.insert(), [{"experiment_id": experiment_id, "key": k, "value": v} for k, v in dict(tags).items()]
                )
        return str(experiment_id)

    async def get(self, experiment_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            found = await _load(conn, [experiment_id])
        if not found:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return found[0]

    async def get_by_name(self, name: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            experiment_id = await conn.scalar(sa.select(E.c.experiment_id).where(E.c.name == name))
            found = await _load(conn, [experiment_id]) if experiment_id is not None else []
        if not found:
            raise not_found(f"Could not find experiment with name '{name}'")
        return found[0]

    async def search(
        self,
        filter_string: str | None,
        view_type: ViewType,
        order_by: list[str],
        max_results: int,
        token: str | None,
        visible: Visibility | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """`visible`: only the experiments the caller may read (None: all), filtered in the query
        so that every page is full."""
        offset = page_token.decode(token)
        stmt = select_experiments(
            filter_string=filter_string, view_type=view_type, order_by=order_by, limit=max_results + 1, offset=offset
        )
        if visible is not None:
            stmt = stmt.where(*authz_where(visible.experiment_clause(E.c.experiment_id)))
        async with self.db.read() as conn:
            ids = (await conn.execute(stmt)).scalars().all()
            found = await _load(conn, ids[:max_results])
        return found, page_token.encode(offset + max_results) if len(ids) > max_results else None

    async def rename(self, experiment_id: int, new_name: str) -> None:
        async with self.db.write() as conn:
            row = await _row(conn, experiment_id)
            if row.lifecycle_stage != LifecycleStage.ACTIVE:
                raise MlflowError(ErrorCode.INVALID_STATE, "Cannot rename a non-active experiment.")
            if row.name == new_name:
                return
            if await conn.scalar(sa.select(E.c.experiment_id).where(E.c.name == new_name)) is not None:
                raise already_exists(f"Experiment(name={new_name}) already exists.")
            await conn.execute(
                E.update().where(E.c.experiment_id == experiment_id).values(name=new_name, last_update_time=now_ms())
            )

    async def set_lifecycle(self, experiment_id: int, stage: LifecycleStage) -> None:
        """Delete or restore an experiment together with its runs, as MLflow does."""
        other = LifecycleStage.ACTIVE if stage == LifecycleStage.DELETED else LifecycleStage.DELETED
        now = now_ms()
        async with self.db.write() as conn:
            row = await _row(conn, experiment_id)
            if row.lifecycle_stage != other:
                verb = "deleted" if stage == LifecycleStage.DELETED else "restored"
                raise not_found(f"Experiment {experiment_id} cannot be {verb}: it is {row.lifecycle_stage}.")
            await conn.execute(
                E.update().where(E.c.experiment_id == experiment_id).values(lifecycle_stage=stage, last_update_time=now)
            )
            runs = tables.runs
            await conn.execute(
                runs.update()
                .where(runs.c.experiment_id == experiment_id, runs.c.lifecycle_stage == other)
                .values(lifecycle_stage=stage, deleted_time=now if stage == LifecycleStage.DELETED else None)
            )

    async def set_tag(self, experiment_id: int, key: str, value: str) -> None:
        async with self.db.write() as conn:
            await require_active(conn, experiment_id)
            await upsert(conn, T, [{"experiment_id": experiment_id, "key": key, "value": value}], ["value"])

    async def delete_tag(self, experiment_id: int, key: str) -> None:
        async with self.db.write() as conn:
            await require_active(conn, experiment_id)
            deleted = await conn.execute(T.delete().where(T.c.experiment_id == experiment_id, T.c.key == key))
            if deleted.rowcount == 0:
                raise not_found(f"No tag with name: {key} in experiment with id {experiment_id}")
