"""Artifact roots recorded in the database: a run's artifact_uri, a model version's files.

Read-only lookups for the artifact routes. A model version points at its files either through
`storage_location` (set when the registry resolved the source) or through its `source`:
`models:/<model_id>` (a logged model), `runs:/<run_id>/<path>`, or a plain artifact URI.
"""

from __future__ import annotations

import sqlalchemy as sa

from tracking_core.store import tables
from tracking_core.store.database import Database


async def run_artifact_uri(db: Database, run_id: str) -> str | None:
    async with db.read() as conn:
        return await conn.scalar(sa.select(tables.runs.c.artifact_uri).where(tables.runs.c.run_id == run_id))


async def model_version_artifact_uri(db: Database, name: str, version: int) -> str | None:
    mv, rm = tables.model_versions, tables.registered_models
    stmt = (
        sa.select(mv.c.storage_location, mv.c.source, mv.c.model_id)
        .join(rm, rm.c.id == mv.c.registered_model_id)
        .where(rm.c.name == name, mv.c.version == version, mv.c.deleted == sa.false())
    )
    async with db.read() as conn:
        row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        if row.storage_location:
            return str(row.storage_location)
        source = row.source or ""
        if source.startswith("models:/") or (row.model_id and not source):
            model_id = source[len("models:/") :].strip("/") if source.startswith("models:/") else row.model_id
            lm = tables.logged_models
            return await conn.scalar(sa.select(lm.c.artifact_location).where(lm.c.model_id == model_id))
        if source.startswith("runs:/"):
            run_id, _, rest = source[len("runs:/") :].partition("/")
            root = await conn.scalar(
                sa.select(tables.runs.c.artifact_uri).where(tables.runs.c.run_id == run_id)
            )
            return None if root is None else f"{root.rstrip('/')}/{rest}".rstrip("/")
        return source or None
