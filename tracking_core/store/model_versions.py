"""Model versions: create, read, describe, delete, search, stage transitions and tags.

Version numbers come from max(version) + 1 over every row of the model, tombstones included,
so a number is never handed out twice. A deleted version stays as a tombstone (`deleted`),
stripped of its source, tags and aliases, and is invisible to every read.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.authz.visibility import Visibility
from tracking_core.authz.visibility import where as authz_where
from tracking_core.errors import ErrorCode, MlflowError, invalid
from tracking_core.registry_validation import ACTIVE_STAGES
from tracking_core.search.model_versions import select_model_versions
from tracking_core.store import registry_json
from tracking_core.store.clock import now_ms
from tracking_core.store.database import Database
from tracking_core.store.model_sources import link_logged_model, resolve
from tracking_core.store.registry_render import PageSearch, load_versions, render_versions
from tracking_core.store.registry_rows import (
    ALIASES,
    MV,
    MV_TAGS,
    RM,
    VERSION_ROW,
    require_model,
    require_version,
    version_not_found,
)
from tracking_core.store.tables import registered_models
from tracking_core.store.upsert import upsert

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

READY = "READY"
CREATE_ATTEMPTS = 3


_search = PageSearch(select_model_versions, VERSION_ROW, registry_json.VERSION_JSON, render_versions)


class ModelVersionStore:
    def __init__(self, db: Database, tracking_db: Database) -> None:
        self.db = db
        self.tracking_db = tracking_db

    @contextlib.asynccontextmanager
    async def _tracking(self, conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
        """A connection to the tracking database inside the registry transaction `conn`.

        One database: the same connection, so the version and the logged model's tag commit
        together (and SQLite's single writer is not asked for twice). Two databases: a nested
        write transaction, always taken after the registry's, so the lock order never inverts.
        """
        if self.tracking_db is self.db:
            yield conn
        else:
            async with self.tracking_db.write() as tracking:
                yield tracking

    async def create(
        self,
        name: str,
        source: str,
        run_id: str | None,
        run_link: str | None,
        description: str | None,
        tags: list[tuple[str, str]],
        model_id: str | None,
    ) -> dict[str, Any]:
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return await self._create_once(name, source, run_id, run_link, description, tags, model_id)
            except sa.exc.IntegrityError:
                # Two creates took the same number (the row lock makes this rare); count again.
                if attempt == CREATE_ATTEMPTS - 1:
                    raise MlflowError(
                        ErrorCode.TEMPORARILY_UNAVAILABLE,
                        f"Concurrent versions of '{name}' are being created; retry.",
                    ) from None
        raise AssertionError("unreachable")

    async def _create_once(
        self,
        name: str,
        source: str,
        run_id: str | None,
        run_link: str | None,
        description: str | None,
        tags: list[tuple[str, str]],
        model_id: str | None,
    ) -> dict[str, Any]:
        now = now_ms()
        async with self.db.write() as conn, self._tracking(conn) as tracking:
            model = await require_model(conn, name, lock=True)
            lineage = await resolve(conn, tracking, source, run_id, model_id)
            highest = await conn.scalar(
                sa.select(sa.func.max(MV.c.version)).where(MV.c.registered_model_id == model.id)
            )
            version = (highest or 0) + 1
            await conn.execute(
                MV.insert().values(
                    registered_model_id=model.id,
                    version=version,
                    creation_time=now,
                    last_updated_time=now,
                    description=description or "",
                    current_stage="None",
                    source=source,
                    run_id=lineage.run_id,
                    run_link=run_link or "",
                    # Registration has nothing to wait for, and the client polls until READY.
                    status=READY,
                    storage_location=lineage.storage_location,
                    model_id=lineage.model_id,
                    deleted=False,
                )
            )
            if tags:
                await conn.execute(
                    MV_TAGS.insert(),
                    [
                        {"registered_model_id": model.id, "version": version, "key": k, "value": v}
                        for k, v in dict(tags).items()
                    ],
                )
            await conn.execute(RM.update().where(RM.c.id == model.id).values(last_updated_time=now))
            if lineage.model_id:
                await link_logged_model(tracking, lineage.model_id, name, version)
            return (await load_versions(conn, [(model.id, version)]))[0]

    async def get(self, name: str, version: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            model = await require_model(conn, name)
            found = await load_versions(conn, [(model.id, version)])  # live versions only
        if not found:
            raise version_not_found(model.name, version)
        return found[0]

    async def download_uri(self, name: str, version: int) -> str:
        async with self.db.read() as conn:
            row = await require_version(conn, await require_model(conn, name), version)
        return str(row.storage_location or row.source)

    async def update(self, name: str, version: int, description: str) -> dict[str, Any]:
        async with self.db.write() as conn:
            model = await require_model(conn, name)
            await require_version(conn, model, version)
            await conn.execute(
                MV.update()
                .where(MV.c.registered_model_id == model.id, MV.c.version == version)
                .values(description=description, last_updated_time=now_ms())
            )
            return (await load_versions(conn, [(model.id, version)]))[0]

    async def delete(self, name: str, version: int) -> None:
        now = now_ms()
        async with self.db.write() as conn:
            model = await require_model(conn, name, lock=True)
            await require_version(conn, model, version)
            await conn.execute(
                MV.update()
                .where(MV.c.registered_model_id == model.id, MV.c.version == version)
                .values(
                    deleted=True,
                    last_updated_time=now,
                    description=None,
                    source=None,
                    run_id=None,
                    run_link=None,
                    storage_location=None,
                    model_id=None,
                    status_message=None,
                )
            )
            for table in (MV_TAGS, ALIASES):
                await conn.execute(
                    table.delete().where(table.c.registered_model_id == model.id, table.c.version == version)
                )
            await conn.execute(RM.update().where(RM.c.id == model.id).values(last_updated_time=now))

    async def transition_stage(
        self, name: str, version: int, stage: str, archive_existing: bool
    ) -> dict[str, Any]:
        if archive_existing and stage not in ACTIVE_STAGES:
            raise invalid(
                f"Model version transition cannot archive existing model versions because '{stage}' is not "
                f"an Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}."
            )
        now = now_ms()
        async with self.db.write() as conn:
            model = await require_model(conn, name, lock=True)
            await require_version(conn, model, version)
            if archive_existing:
                await conn.execute(
                    MV.update()
                    .where(
                        MV.c.registered_model_id == model.id,
                        MV.c.version != version,
                        MV.c.current_stage == stage,
                        MV.c.deleted == sa.false(),
                    )
                    .values(current_stage="Archived", last_updated_time=now)
                )
            await conn.execute(
                MV.update()
                .where(MV.c.registered_model_id == model.id, MV.c.version == version)
                .values(current_stage=stage, last_updated_time=now)
            )
            await conn.execute(RM.update().where(RM.c.id == model.id).values(last_updated_time=now))
            return (await load_versions(conn, [(model.id, version)]))[0]

    async def search(
        self,
        filter_string: str | None,
        order_by: list[str],
        max_results: int,
        token: str | None,
        visible: Visibility | None = None,
    ) -> tuple[list[Any], str | None]:
        """`visible`: only versions of models the caller may read (None: all), in the query."""
        where = authz_where(visible.model_clause(registered_models.c.name)) if visible else ()
        return await _search(self.db, filter_string, order_by, max_results, token, where)

    async def set_tag(self, name: str, version: int, key: str, value: str) -> None:
        async with self.db.write() as conn:
            model = await require_model(conn, name)
            await require_version(conn, model, version)
            row = {"registered_model_id": model.id, "version": version, "key": key, "value": value}
            await upsert(conn, MV_TAGS, [row], ["value"])

    async def delete_tag(self, name: str, version: int, key: str) -> None:
        """A missing tag is not an error (MLflow's behaviour); a missing version is."""
        async with self.db.write() as conn:
            model = await require_model(conn, name)
            await require_version(conn, model, version)
            await conn.execute(
                MV_TAGS.delete().where(
                    MV_TAGS.c.registered_model_id == model.id,
                    MV_TAGS.c.version == version,
                    MV_TAGS.c.key == key,
                )
            )
