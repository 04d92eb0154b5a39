"""Artifact roots recorded in the tracking database, read by the artifact routes.

(A model version's location comes from the registry store: `versions.download_uri`.)
"""

from __future__ import annotations

import sqlalchemy as sa

from tracking_core.store import tables
from tracking_core.store.database import Database


async def run_artifact_uri(db: Database, run_id: str) -> str | None:
    async with db.read() as conn:
        return await conn.scalar(sa.select(tables.runs.c.artifact_uri).where(tables.runs.c.run_id == run_id))


async def logged_model_artifact_uri(db: Database, model_id: str) -> str | None:
    async with db.read() as conn:
        lm = tables.logged_models
        return await conn.scalar(sa.select(lm.c.artifact_location).where(lm.c.model_id == model_id))
