"""Reading the registry tables: lookups by name, and RegisteredModel / ModelVersion messages.

Shared by the registered-model and model-version stores. Messages are built for many rows at
once with one query per child table (tags, aliases, latest versions), in chunks so a 200,000
version search stays under every backend's bind-parameter limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tracking_core.errors import not_found
from tracking_core.store import tables

RM, MV = tables.registered_models, tables.model_versions
RM_TAGS, MV_TAGS, ALIASES = (
    tables.registered_model_tags,
    tables.model_version_tags,
    tables.registered_model_aliases,
)

CHUNK = 500
T = TypeVar("T")

VersionKey = tuple[int, int]  # (registered_model_id, version)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def model_not_found(name: str) -> Exception:
    return not_found(f"Registered Model with name={name} not found")


def version_not_found(name: str, version: int) -> Exception:
    return not_found(f"Model Version (name={name}, version={version}) not found")


async def require_model(conn: AsyncConnection, name: str, *, lock: bool = False) -> Any:
    """The registered model's row; `lock` holds it (FOR UPDATE) until the transaction ends, which
    serialises version numbering and stage moves per model on PostgreSQL and MySQL."""
    stmt = sa.select(RM).where(RM.c.name == name)
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise model_not_found(name)
    return row


async def require_version(conn: AsyncConnection, model: Any, version: int) -> Any:
    """A live (not deleted) version of `model`."""
    row = (
        await conn.execute(
            sa.select(MV).where(
                MV.c.registered_model_id == model.id, MV.c.version == version, MV.c.deleted == sa.false()
            )
        )
    ).first()
    if row is None:
        raise version_not_found(model.name, version)
    return row


def render_version(row: Any, name: str, tags: list[dict[str, str]], aliases: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "version": str(row.version),
        "creation_timestamp": row.creation_time,
        "last_updated_timestamp": row.last_updated_time,
        "current_stage": row.current_stage,
        # MLflow emits these two as "" when unset, and clients read them unconditionally.
        "description": row.description or "",
        "source": row.source,
        "status": row.status,
        "run_link": row.run_link or "",
    }
    for optional in ("run_id", "user_id", "status_message", "model_id"):
        if getattr(row, optional):
            out[optional] = getattr(row, optional)
    if tags:
        out["tags"] = tags
    if aliases:
        out["aliases"] = aliases
    return out


async def load_versions(conn: AsyncConnection, keys: Sequence[VersionKey]) -> list[dict[str, Any]]:
    """ModelVersion messages for `keys`, in that order; deleted or unknown keys are skipped."""
    found = await _versions_by_key(conn, keys)
    return [found[k] for k in keys if k in found]


async def _versions_by_key(
    conn: AsyncConnection, keys: Sequence[VersionKey]
) -> dict[VersionKey, dict[str, Any]]:
    wanted = set(keys)
    rows: dict[VersionKey, Any] = {}
    tags: dict[VersionKey, list[dict[str, str]]] = {}
    aliases: dict[VersionKey, list[str]] = {}
    for chunk in chunks(sorted(wanted)):
        # Two plain IN lists (model ids, version numbers) use the primary key on every backend;
        # the few extra rows they admit are dropped against `wanted`.
        model_ids = sorted({k[0] for k in chunk})
        numbers = sorted({k[1] for k in chunk})
        stmt = (
            sa.select(MV, RM.c.name.label("model_name"))
            .join(RM, RM.c.id == MV.c.registered_model_id)
            .where(
                MV.c.registered_model_id.in_(model_ids), MV.c.version.in_(numbers), MV.c.deleted == sa.false()
            )
        )
        for row in await conn.execute(stmt):
            if (row.registered_model_id, row.version) in wanted:
                rows[(row.registered_model_id, row.version)] = row
        tag_stmt = (
            sa.select(MV_TAGS)
            .where(MV_TAGS.c.registered_model_id.in_(model_ids), MV_TAGS.c.version.in_(numbers))
            .order_by(MV_TAGS.c.key)
        )
        for tag in await conn.execute(tag_stmt):
            tags.setdefault((tag.registered_model_id, tag.version), []).append(
                {"key": tag.key, "value": tag.value}
            )
        alias_stmt = (
            sa.select(ALIASES)
            .where(ALIASES.c.registered_model_id.in_(model_ids), ALIASES.c.version.in_(numbers))
            .order_by(ALIASES.c.alias)
        )
        for alias in await conn.execute(alias_stmt):
            aliases.setdefault((alias.registered_model_id, alias.version), []).append(alias.alias)
    return {
        k: render_version(row, row.model_name, tags.get(k, []), aliases.get(k, [])) for k, row in rows.items()
    }


async def latest_version_keys(
    conn: AsyncConnection, model_ids: Sequence[int], stages: Sequence[str] | None = None
) -> list[VersionKey]:
    """The highest live version per (model, stage), optionally only for some stages."""
    stmt = (
        sa.select(MV.c.registered_model_id, sa.func.max(MV.c.version))
        .where(MV.c.registered_model_id.in_(model_ids), MV.c.deleted == sa.false())
        .group_by(MV.c.registered_model_id, MV.c.current_stage)
    )
    if stages is not None:
        stmt = stmt.where(MV.c.current_stage.in_(stages))
    return sorted((int(r[0]), int(r[1])) for r in await conn.execute(stmt))


def _render_model(
    row: Any, tags: list[dict[str, str]], aliases: list[dict[str, str]], latest: list[dict[str, Any]]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": row.name,
        "creation_timestamp": row.creation_time,
        "last_updated_timestamp": row.last_updated_time,
    }
    if row.description:
        out["description"] = row.description
    if row.user_id:
        out["user_id"] = row.user_id
    if latest:
        out["latest_versions"] = latest
    if tags:
        out["tags"] = tags
    if aliases:
        out["aliases"] = aliases
    return out


async def load_models(conn: AsyncConnection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """RegisteredModel messages (with tags, aliases and latest version per stage) for `ids`, in order."""
    rows: dict[int, Any] = {}
    tags: dict[int, list[dict[str, str]]] = {}
    aliases: dict[int, list[dict[str, str]]] = {}
    latest: dict[int, list[dict[str, Any]]] = {}
    for chunk in chunks(list(dict.fromkeys(ids))):
        for row in await conn.execute(sa.select(RM).where(RM.c.id.in_(chunk))):
            rows[row.id] = row
        for tag in await conn.execute(
            sa.select(RM_TAGS).where(RM_TAGS.c.registered_model_id.in_(chunk)).order_by(RM_TAGS.c.key)
        ):
            tags.setdefault(tag.registered_model_id, []).append({"key": tag.key, "value": tag.value})
        for alias in await conn.execute(
            sa.select(ALIASES).where(ALIASES.c.registered_model_id.in_(chunk)).order_by(ALIASES.c.alias)
        ):
            aliases.setdefault(alias.registered_model_id, []).append(
                {"alias": alias.alias, "version": str(alias.version)}
            )
        keys = await latest_version_keys(conn, chunk)
        versions = await _versions_by_key(conn, keys)
        for key in keys:
            if key in versions:
                latest.setdefault(key[0], []).append(versions[key])
    return [
        _render_model(rows[i], tags.get(i, []), aliases.get(i, []), latest.get(i, []))
        for i in ids
        if i in rows
    ]
