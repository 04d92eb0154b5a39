"""Permanent deletion of runs and experiments already in the `deleted` lifecycle stage.

Everything is set-based and chunked so that a run with millions of metric points neither
loads them into Python nor holds one giant transaction (and, on SQLite, the write lock) while
they go: metric rows are deleted per (run, key) in slices of about METRIC_SLICE rows, each its
own transaction, found by one boundary row read with ORDER BY … OFFSET. The rest of a run's
rows go in one short transaction per chunk of runs, after its metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from tracking_core.entities import LifecycleStage
from tracking_core.errors import invalid, not_found
from tracking_core.store import tables
from tracking_core.store.database import Database

METRIC_SLICE = 50_000
RUN_CHUNK = 100
DELETED = LifecycleStage.DELETED.value
# Entity types on either end of an `inputs` edge (dataset inputs, model inputs and outputs).
RUN_EDGES = ("RUN", "RUN_INPUT", "RUN_OUTPUT")
MODEL_EDGES = ("MODEL", "MODEL_INPUT", "MODEL_OUTPUT")


@dataclass(frozen=True)
class RunToDelete:
    run_id: str
    experiment_id: int
    artifact_uri: str


@dataclass(frozen=True)
class ExperimentToDelete:
    experiment_id: int
    name: str
    # Locations of the experiment's logged models: deleted with it (the FK cascade takes the rows).
    model_artifact_uris: tuple[str, ...]


async def deleted_runs(
    db: Database,
    run_ids: Sequence[str],
    experiment_ids: Sequence[int],
    older_than_ms: int | None,
    now_ms: int,
) -> list[RunToDelete]:
    """Runs to remove: the named ones (each must be deleted and old enough), or, when no ids are
    named at all, every deleted run old enough; plus every run of the named experiments."""
    r = tables.runs
    cutoff = None if older_than_ms is None else now_ms - older_than_ms
    async with db.read() as conn:
        if run_ids:
            rows = {
                row.run_id: row for row in await conn.execute(sa.select(r).where(r.c.run_id.in_(run_ids)))
            }
            for run_id in run_ids:
                row = rows.get(run_id)
                if row is None:
                    raise not_found(f"Run with id={run_id} not found")
                if row.lifecycle_stage != DELETED:
                    raise invalid(
                        f"Run {run_id} is not in the deleted lifecycle stage; only deleted runs are removed."
                    )
                if cutoff is not None and (row.deleted_time or 0) > cutoff:
                    raise invalid(f"Run {run_id} was deleted too recently for --older-than.")
            found = list(rows.values())
        elif not experiment_ids:
            stmt = sa.select(r).where(r.c.lifecycle_stage == DELETED)
            if cutoff is not None:
                stmt = stmt.where(sa.func.coalesce(r.c.deleted_time, 0) <= cutoff)
            found = list(await conn.execute(stmt))
        else:
            found = []
        if experiment_ids:
            found += list(await conn.execute(sa.select(r).where(r.c.experiment_id.in_(experiment_ids))))
    unique = {row.run_id: RunToDelete(row.run_id, row.experiment_id, row.artifact_uri) for row in found}
    return sorted(unique.values(), key=lambda x: x.run_id)


async def deleted_experiments(
    db: Database, experiment_ids: Sequence[int], run_ids_given: bool, older_than_ms: int | None, now_ms: int
) -> list[ExperimentToDelete]:
    """Experiments to remove: the named ones (each deleted and old enough), or every deleted one
    old enough when neither runs nor experiments are named."""
    e, lm = tables.experiments, tables.logged_models
    cutoff = None if older_than_ms is None else now_ms - older_than_ms
    async with db.read() as conn:
        if experiment_ids:
            rows = {
                x.experiment_id: x
                for x in await conn.execute(sa.select(e).where(e.c.experiment_id.in_(experiment_ids)))
            }
            for eid in experiment_ids:
                row = rows.get(eid)
                if row is None:
                    raise not_found(f"No Experiment with id={eid} exists")
                if row.lifecycle_stage != DELETED:
                    raise invalid(f"Experiment {eid} is not in the deleted lifecycle stage.")
                if cutoff is not None and row.last_update_time > cutoff:
                    raise invalid(f"Experiment {eid} was deleted too recently for --older-than.")
            found = list(rows.values())
        elif run_ids_given:
            found = []
        else:
            stmt = sa.select(e).where(e.c.lifecycle_stage == DELETED)
            if cutoff is not None:
                stmt = stmt.where(e.c.last_update_time <= cutoff)
            found = list(await conn.execute(stmt))
        out = []
        for row in sorted(found, key=lambda x: x.experiment_id):
            uris = await conn.scalars(
                sa.select(lm.c.artifact_location).where(lm.c.experiment_id == row.experiment_id)
            )
            out.append(ExperimentToDelete(row.experiment_id, row.name, tuple(uris)))
    return out


async def _delete_metrics(db: Database, run_id: str) -> int:
    m, latest = tables.metrics, tables.latest_metrics
    async with db.read() as conn:
        keys = list(await conn.scalars(sa.select(latest.c.key).where(latest.c.run_id == run_id)))
    removed = 0
    for key in keys:
        while True:
            async with db.write() as conn:
                mine = sa.and_(m.c.run_id == run_id, m.c.key == key)
                # The row METRIC_SLICE places in: everything up to it goes in this transaction.
                edge = (
                    await conn.execute(
                        sa.select(m.c.step, m.c.timestamp)
                        .where(mine)
                        .order_by(m.c.step, m.c.timestamp)
                        .offset(METRIC_SLICE)
                        .limit(1)
                    )
                ).first()
                upto = (
                    sa.or_(
                        m.c.step < edge.step, sa.and_(m.c.step == edge.step, m.c.timestamp <= edge.timestamp)
                    )
                    if edge is not None
                    else sa.true()
                )
                removed += (await conn.execute(m.delete().where(mine, upto))).rowcount or 0
            if edge is None:
                break
    async with db.write() as conn:  # points under keys latest_metrics does not know, if any
        removed += (await conn.execute(m.delete().where(m.c.run_id == run_id))).rowcount or 0
    return removed


async def delete_runs(db: Database, run_ids: Sequence[str]) -> int:
    """Remove the runs' rows (metrics first, in slices); returns the number of metric rows removed."""
    removed = 0
    for run_id in run_ids:
        removed += await _delete_metrics(db, run_id)
    i, it = tables.inputs, tables.input_tags
    for start in range(0, len(run_ids), RUN_CHUNK):
        chunk = list(run_ids[start : start + RUN_CHUNK])
        async with db.write() as conn:
            edges = sa.or_(
                sa.and_(i.c.destination_type.in_(RUN_EDGES), i.c.destination_id.in_(chunk)),
                sa.and_(i.c.source_type.in_(RUN_EDGES), i.c.source_id.in_(chunk)),
            )
            await conn.execute(it.delete().where(it.c.input_uuid.in_(sa.select(i.c.input_uuid).where(edges))))
            await conn.execute(i.delete().where(edges))
            for table in (tables.latest_metrics, tables.params, tables.run_tags):
                await conn.execute(table.delete().where(table.c.run_id.in_(chunk)))
            await conn.execute(tables.runs.delete().where(tables.runs.c.run_id.in_(chunk)))
    return removed


async def delete_experiment(db: Database, experiment_id: int) -> None:
    """Remove an experiment whose runs are already gone, with its tags, datasets and logged models."""
    i, d = tables.inputs, tables.datasets
    async with db.write() as conn:
        datasets = sa.select(d.c.dataset_uuid).where(d.c.experiment_id == experiment_id)
        edges = sa.and_(i.c.source_type == "DATASET", i.c.source_id.in_(datasets))
        await conn.execute(
            tables.input_tags.delete().where(
                tables.input_tags.c.input_uuid.in_(sa.select(i.c.input_uuid).where(edges))
            )
        )
        await conn.execute(i.delete().where(edges))
        # Children are deleted explicitly rather than trusting ON DELETE CASCADE, which SQLite
        # applies only when foreign keys are switched on for the connection.
        lm = tables.logged_models
        models = sa.select(lm.c.model_id).where(lm.c.experiment_id == experiment_id)
        model_edges = sa.or_(
            sa.and_(i.c.source_type.in_(MODEL_EDGES), i.c.source_id.in_(models)),
            sa.and_(i.c.destination_type.in_(MODEL_EDGES), i.c.destination_id.in_(models)),
        )
        await conn.execute(i.delete().where(model_edges))
        for child in (tables.logged_model_params, tables.logged_model_tags, tables.logged_model_metrics):
            await conn.execute(child.delete().where(child.c.model_id.in_(models)))
        await conn.execute(lm.delete().where(lm.c.experiment_id == experiment_id))
        await conn.execute(d.delete().where(d.c.experiment_id == experiment_id))
        await conn.execute(
            tables.experiment_tags.delete().where(tables.experiment_tags.c.experiment_id == experiment_id)
        )
        await conn.execute(
            tables.experiments.delete().where(tables.experiments.c.experiment_id == experiment_id)
        )
