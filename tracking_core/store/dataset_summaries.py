"""Dataset summaries of experiments: what MLflow's UI lists as an experiment's datasets.

(experiment_id, name, digest, context) for each dataset used by a run, where context is the
input's `mlflow.data.context` tag ("training", "eval", ...) or absent.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tracking_core.store import tables
from tracking_core.store.database import Database

CONTEXT_TAG = "mlflow.data.context"
MAX_SUMMARIES = 1000  # as MLflow's store
DS, IN, IT = tables.datasets, tables.inputs, tables.input_tags


async def dataset_summaries(db: Database, experiment_ids: list[int]) -> list[dict[str, Any]]:
    stmt = (
        sa.select(DS.c.experiment_id, DS.c.name, DS.c.digest, IT.c.value)
        .select_from(DS)
        .join(IN, sa.and_(IN.c.source_type == "DATASET", IN.c.source_id == DS.c.dataset_uuid))
        .outerjoin(IT, sa.and_(IT.c.input_uuid == IN.c.input_uuid, IT.c.name == CONTEXT_TAG))
        .where(DS.c.experiment_id.in_(experiment_ids))
        .distinct()
        .order_by(DS.c.experiment_id, DS.c.name, DS.c.digest, IT.c.value)
        .limit(MAX_SUMMARIES)
    )
    async with db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    out = []
    for experiment_id, name, digest, context in rows:
        summary = {"experiment_id": str(experiment_id), "name": name, "digest": digest}
        if context is not None:
            summary["context"] = context
        out.append(summary)
    return out
