"""The registry's rows: lookups by name, the column sets messages are built from, direct reads.

A page of models or versions is read as whole rows that also carry their tags (a JSON array,
see json_agg.py) and aliases (a comma-joined list), so rendering a page takes no further
queries. When a backend cannot aggregate, or an aggregate may have been cut short, the
`*_tags` / `*_aliases` functions here read the same data directly, in chunks that stay under
every backend's bind-parameter limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.errors import not_found
from tracking_core.store import tables
from tracking_core.store.id_lists import chunks
from tracking_core.store.json_agg import key_value_list

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

RM, MV = tables.registered_models, tables.model_versions
RM_TAGS, MV_TAGS, ALIASES = (
    tables.registered_model_tags,
    tables.model_version_tags,
    tables.registered_model_aliases,
)

VersionKey = tuple[int, int]  # (registered_model_id, version)
Tags = list[dict[str, str]]

# MySQL's GROUP_CONCAT stops at group_concat_max_len (1024 bytes by default) without an error, so
# an alias list that long may have been cut: it is read again directly (dozens of aliases).
MAYBE_CUT = 1024

_OF_VERSION = (MV.c.registered_model_id, MV.c.version)


def _per_version(table: sa.Table) -> tuple[sa.ColumnElement[bool], ...]:
    return (table.c.registered_model_id == MV.c.registered_model_id, table.c.version == MV.c.version)


# Alias names are [A-Za-z0-9_-] only, so a comma-joined list needs no escaping.
_VERSION_ALIASES = (
    sa.select(sa.func.aggregate_strings(ALIASES.c.alias, ",")).where(*_per_version(ALIASES)).scalar_subquery()
)
_VERSION_TAGS = (
    sa.select(key_value_list(MV_TAGS.c.key, MV_TAGS.c.value)).where(*_per_version(MV_TAGS)).scalar_subquery()
)
_MODEL_ALIASES = (
    sa.select(sa.func.aggregate_strings(ALIASES.c.alias + ":" + sa.cast(ALIASES.c.version, sa.String), ","))
    .where(ALIASES.c.registered_model_id == RM.c.id)
    .scalar_subquery()
)
_MODEL_TAGS = (
    sa.select(key_value_list(RM_TAGS.c.key, RM_TAGS.c.value))
    .where(RM_TAGS.c.registered_model_id == RM.c.id)
    .scalar_subquery()
)

# A version as rendered, unpacked in this order (by name, every row attribute costs a lookup,
# which adds up over a 10,000-version page).
VERSION_ROW = (
    *_OF_VERSION,
    RM.c.name.label("model_name"),
    MV.c.creation_time,
    MV.c.last_updated_time,
    MV.c.current_stage,
    MV.c.description,
    MV.c.source,
    MV.c.status,
    MV.c.run_link,
    MV.c.run_id,
    MV.c.user_id,
    MV.c.status_message,
    MV.c.model_id,
    _VERSION_TAGS.label("tags_json"),
    _VERSION_ALIASES.label("alias_list"),
)
MODEL_ROW = (RM, _MODEL_TAGS.label("tags_json"), _MODEL_ALIASES.label("alias_list"))


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
    live = (MV.c.registered_model_id == model.id, MV.c.version == version, MV.c.deleted == sa.false())
    row = (await conn.execute(sa.select(MV).where(*live))).first()
    if row is None:
        raise version_not_found(model.name, version)
    return row


# Statements built once with expanding parameters: SQLAlchemy derives a statement's cache key
# on every execution of a freshly built statement, a cost that shows at this request rate.
_IDS, _NUMBERS, _STAGES = (sa.bindparam(n, expanding=True) for n in ("ids", "numbers", "stages"))
_VERSION_ROWS = (
    sa.select(*VERSION_ROW)
    .join(RM, RM.c.id == MV.c.registered_model_id)
    # Two plain IN lists (model ids, version numbers) use the primary key on every backend;
    # the few extra rows they admit are dropped by the caller.
    .where(MV.c.registered_model_id.in_(_IDS), MV.c.version.in_(_NUMBERS), MV.c.deleted == sa.false())
)
_MODEL_ROWS = sa.select(*MODEL_ROW).where(RM.c.id.in_(_IDS))


def _latest_rows(stages: bool) -> sa.Select[Any]:
    latest = (
        sa.select(MV.c.registered_model_id, sa.func.max(MV.c.version).label("version"))
        .where(MV.c.registered_model_id.in_(_IDS), MV.c.deleted == sa.false())
        .group_by(MV.c.registered_model_id, MV.c.current_stage)
    )
    if stages:
        latest = latest.where(MV.c.current_stage.in_(_STAGES))
    page = latest.subquery("latest")
    on = sa.and_(MV.c.registered_model_id == page.c.registered_model_id, MV.c.version == page.c.version)
    return (
        sa.select(*VERSION_ROW)
        .join(page, on)
        .join(RM, RM.c.id == MV.c.registered_model_id)
        .order_by(MV.c.registered_model_id, MV.c.version)
    )


_LATEST_ROWS = {False: _latest_rows(False), True: _latest_rows(True)}


async def version_rows(conn: AsyncConnection, keys: Sequence[VersionKey]) -> dict[VersionKey, Any]:
    """`VERSION_ROW`s of the live versions among `keys`."""
    found: dict[VersionKey, Any] = {}
    for chunk in chunks(sorted(set(keys))):
        params = {"ids": sorted({k[0] for k in chunk}), "numbers": sorted({k[1] for k in chunk})}
        for row in (await conn.execute(_VERSION_ROWS, params)).all():
            found[(row.registered_model_id, row.version)] = row
    return {k: found[k] for k in keys if k in found}


async def model_rows(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for chunk in chunks(sorted(set(ids))):
        for row in (await conn.execute(_MODEL_ROWS, {"ids": list(chunk)})).all():
            found[row.id] = row
    return found


async def latest_version_rows(
    conn: AsyncConnection, model_ids: Sequence[int], stages: Sequence[str] | None = None
) -> list[Any]:
    """`VERSION_ROW`s of the highest live version per (model, stage), optionally for some stages only."""
    rows: list[Any] = []
    for chunk in chunks(list(model_ids)):
        params: dict[str, Any] = {"ids": list(chunk)}
        if stages is not None:
            params["stages"] = list(stages)
        rows.extend((await conn.execute(_LATEST_ROWS[stages is not None], params)).all())
    return rows


async def version_tags(conn: AsyncConnection, keys: Sequence[VersionKey]) -> dict[VersionKey, Tags]:
    """Tags of these versions, read directly."""
    wanted = set(keys)
    tags: dict[VersionKey, Tags] = {}
    for chunk in chunks(sorted(wanted)):
        stmt = (
            sa.select(MV_TAGS.c.registered_model_id, MV_TAGS.c.version, MV_TAGS.c.key, MV_TAGS.c.value)
            .where(
                MV_TAGS.c.registered_model_id.in_(sorted({k[0] for k in chunk})),
                MV_TAGS.c.version.in_(sorted({k[1] for k in chunk})),
            )
            .order_by(MV_TAGS.c.key)
        )
        for model_id, version, key, value in (await conn.execute(stmt)).all():
            if (model_id, version) in wanted:
                tags.setdefault((model_id, version), []).append({"key": key, "value": value})
    return tags


async def model_tags(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Tags]:
    """Tags of these registered models, read directly."""
    tags: dict[int, Tags] = {}
    for chunk in chunks(sorted(set(ids))):
        stmt = sa.select(RM_TAGS.c.registered_model_id, RM_TAGS.c.key, RM_TAGS.c.value)
        stmt = stmt.where(RM_TAGS.c.registered_model_id.in_(chunk)).order_by(RM_TAGS.c.key)
        for model_id, key, value in (await conn.execute(stmt)).all():
            tags.setdefault(model_id, []).append({"key": key, "value": value})
    return tags


async def version_aliases(conn: AsyncConnection, key: VersionKey) -> list[str]:
    """A version's aliases, read directly."""
    stmt = sa.select(ALIASES.c.alias).where(
        ALIASES.c.registered_model_id == key[0], ALIASES.c.version == key[1]
    )
    return sorted((await conn.execute(stmt)).scalars())


async def model_aliases(conn: AsyncConnection, model_id: int) -> list[tuple[str, str]]:
    """A model's (alias, version) pairs, read directly."""
    stmt = sa.select(ALIASES.c.alias, ALIASES.c.version).where(ALIASES.c.registered_model_id == model_id)
    return sorted((alias, str(version)) for alias, version in (await conn.execute(stmt)).all())


def cached_page_statement(
    select: Callable[..., sa.Select[Any]], columns: Sequence[Any]
) -> Callable[..., sa.Select[Any]]:
    """A search's SELECT of whole rows, built once per distinct request (filter, order, page).

    A repeated search skips parsing and SQLAlchemy's cache-key derivation; statements are
    immutable, so sharing one is safe, and a bad filter raises and is not cached.
    """

    @functools.lru_cache(maxsize=256)
    def build(filter_string: str | None, order_by: tuple[str, ...], limit: int, offset: int) -> sa.Select[Any]:
        stmt = select(filter_string=filter_string, order_by=list(order_by), limit=limit, offset=offset)
        # Keeping the FROM list lets `columns` be a literal (registry_json.py) that names no table.
        return stmt.with_only_columns(*columns, maintain_column_froms=True)

    return build
