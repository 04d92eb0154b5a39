"""Registered models: create, read, rename, describe, delete, search, tags and aliases.

A model's surrogate id is what versions, tags and aliases refer to, so a rename is one row and
a delete removes the children explicitly (not relying on each backend's cascade settings).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tracking_core.authz.visibility import Visibility
from tracking_core.authz.visibility import where as authz_where
from tracking_core.errors import already_exists, invalid, not_found
from tracking_core.search.registered_models import select_registered_models
from tracking_core.store import registry_json
from tracking_core.store.clock import now_ms
from tracking_core.store.database import Database
from tracking_core.store.registry_render import PageSearch, load_models, load_versions, render_models, render_versions
from tracking_core.store.registry_rows import (
    ALIASES,
    MODEL_ROW,
    MV,
    MV_TAGS,
    RM,
    RM_TAGS,
    latest_version_rows,
    require_model,
    require_version,
    version_not_found,
)
from tracking_core.store.upsert import upsert


def _exists_error(name: str) -> Exception:
    return already_exists(f"Registered Model (name={name}) already exists.")


_search = PageSearch(select_registered_models, MODEL_ROW, registry_json.MODEL_JSON, render_models)


class RegisteredModelStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, description: str | None, tags: list[tuple[str, str]]) -> dict[str, Any]:
        now = now_ms()
        async with self.db.write() as conn:
            if await conn.scalar(sa.select(RM.c.id).where(RM.c.name == name)) is not None:
                raise _exists_error(name)
            try:
                result = await conn.execute(
                    RM.insert().values(
                        name=name, creation_time=now, last_updated_time=now, description=description
                    )
                )
            except sa.exc.IntegrityError:
                raise _exists_error(name) from None  # a concurrent create of the same name won
            model_id = result.inserted_primary_key[0]
            if tags:
                await conn.execute(
                    RM_TAGS.insert(),
                    [{"registered_model_id": model_id, "key": k, "value": v} for k, v in dict(tags).items()],
                )
            return (await load_models(conn, [model_id]))[0]

    async def get(self, name: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            model = await require_model(conn, name)
            return (await load_models(conn, [model.id]))[0]

    async def rename(self, name: str, new_name: str) -> dict[str, Any]:
        async with self.db.write() as conn:
            model = await require_model(conn, name, lock=True)
            if new_name != name:
                if await conn.scalar(sa.select(RM.c.id).where(RM.c.name == new_name)) is not None:
                    raise _exists_error(new_name)
                try:
                    await conn.execute(
                        RM.update()
                        .where(RM.c.id == model.id)
                        .values(name=new_name, last_updated_time=now_ms())
                    )
                except sa.exc.IntegrityError:
                    raise _exists_error(new_name) from None
            return (await load_models(conn, [model.id]))[0]

    async def update(self, name: str, description: str) -> dict[str, Any]:
        async with self.db.write() as conn:
            model = await require_model(conn, name, lock=True)
            await conn.execute(
                RM.update()
                .where(RM.c.id == model.id)
                .values(description=description, last_updated_time=now_ms())
            )
            return (await load_models(conn, [model.id]))[0]

    async def delete(self, name: str) -> None:
        """Hard delete: the model, every version (tombstones too), their tags, and the aliases."""
        async with self.db.write() as conn:
            model = await require_model(conn, name, lock=True)
            for table in (MV_TAGS, MV, ALIASES, RM_TAGS):
                await conn.execute(table.delete().where(table.c.registered_model_id == model.id))
            await conn.execute(RM.delete().where(RM.c.id == model.id))

    async def search(
        self,
        filter_string: str | None,
        order_by: list[str],
        max_results: int,
        token: str | None,
        visible: Visibility | None = None,
    ) -> tuple[list[Any], str | None]:
        """`visible`: only the models the caller may read (None: all), filtered in the query."""
        where = authz_where(visible.model_clause(RM.c.name)) if visible else ()
        return await _search(self.db, filter_string, order_by, max_results, token, where)

    async def latest_versions(self, name: str, stages: list[str] | None) -> list[dict[str, Any]]:
        """The highest live version in each stage (each of `stages`, or every stage)."""
        async with self.db.read() as conn:
            model = await require_model(conn, name)
            return await render_versions(conn, await latest_version_rows(conn, [model.id], stages or None))

    async def set_tag(self, name: str, key: str, value: str) -> None:
        async with self.db.write() as conn:
            model = await require_model(conn, name)
            await upsert(
                conn, RM_TAGS, [{"registered_model_id": model.id, "key": key, "value": value}], ["value"]
            )

    async def delete_tag(self, name: str, key: str) -> None:
        """A missing tag is not an error (MLflow's behaviour); a missing model is."""
        async with self.db.write() as conn:
            model = await require_model(conn, name)
            await conn.execute(
                RM_TAGS.delete().where(RM_TAGS.c.registered_model_id == model.id, RM_TAGS.c.key == key)
            )

    async def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point `alias` at `version`, moving it if it pointed elsewhere."""
        async with self.db.write() as conn:
            model = await require_model(conn, name)
            await require_version(conn, model, version)
            await upsert(
                conn,
                ALIASES,
                [{"registered_model_id": model.id, "alias": alias, "version": version}],
                ["version"],
            )

    async def delete_alias(self, name: str, alias: str) -> None:
        async with self.db.write() as conn:
            model = await require_model(conn, name)
            await conn.execute(
                ALIASES.delete().where(ALIASES.c.registered_model_id == model.id, ALIASES.c.alias == alias)
            )

    async def get_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        """The version an alias names; `latest` (any case) is the highest live version."""
        async with self.db.read() as conn:
            model = await require_model(conn, name)
            if alias.lower() == "latest":
                version = await conn.scalar(
                    sa.select(sa.func.max(MV.c.version)).where(
                        MV.c.registered_model_id == model.id, MV.c.deleted == sa.false()
                    )
                )
                if version is None:
                    raise not_found(f"Latest version not found for model {name}.")
            else:
                version = await conn.scalar(
                    sa.select(ALIASES.c.version).where(
                        ALIASES.c.registered_model_id == model.id, ALIASES.c.alias == alias
                    )
                )
                if version is None:
                    # MLflow answers INVALID_PARAMETER_VALUE (400) here, not 404; kept identical.
                    raise invalid(f"Registered model alias {alias} not found.")
            found = await load_versions(conn, [(model.id, version)])
        if not found:
            raise version_not_found(name, version)
        return found[0]
