"""RegisteredModel and ModelVersion messages, built from the rows of registry_rows.py, and the
search pages that list them (rendered by the database itself where registry_json.py can)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.search import page_token
from tracking_core.store import json_agg, registry_json
from tracking_core.store.database import Database
from tracking_core.store.registry_rows import (
    MAYBE_CUT,
    Tags,
    VersionKey,
    cached_page_statement,
    latest_version_rows,
    model_aliases,
    model_rows,
    model_tags,
    version_aliases,
    version_rows,
    version_tags,
)
from tracking_core.store.rows import plain_rows

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


def render_version(row: Any, tags: Tags, aliases: list[str]) -> dict[str, Any]:
    """A ModelVersion message from a `VERSION_ROW`."""
    (_, version, name, created, updated, stage, description, source, status, run_link, run_id, user_id,
     status_message, model_id, _, _) = row  # fmt: skip
    out: dict[str, Any] = {
        "name": name,
        "version": str(version),
        "creation_timestamp": created,
        "last_updated_timestamp": updated,
        "current_stage": stage,
        # MLflow emits these two as "" when unset, and clients read them unconditionally.
        "description": description or "",
        "source": source,
        "status": status,
        "run_link": run_link or "",
    }
    if run_id:
        out["run_id"] = run_id
    if user_id:
        out["user_id"] = user_id
    if status_message:
        out["status_message"] = status_message
    if model_id:
        out["model_id"] = model_id
    if tags:
        out["tags"] = tags
    if aliases:
        out["aliases"] = aliases
    return out


def _parsed_tags(conn: AsyncConnection, rows: Sequence[Any]) -> list[Tags | None]:
    """Each row's tags from its aggregate; None where they must be read directly."""
    if conn.dialect.name not in json_agg.SUPPORTED:
        return [None] * len(rows)
    return [json_agg.parse(row.tags_json) for row in rows]


async def render_versions(conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """ModelVersion messages for `VERSION_ROW`s, in their order."""
    keys: list[VersionKey] = [(r.registered_model_id, r.version) for r in rows]
    parsed = _parsed_tags(conn, rows)
    missing = [k for k, tags in zip(keys, parsed, strict=True) if tags is None]
    direct = await version_tags(conn, missing) if missing else {}
    out = []
    for row, key, tags in zip(rows, keys, parsed, strict=True):
        text = row.alias_list
        if not text:
            aliases = []
        elif len(text) < MAYBE_CUT:
            aliases = sorted(text.split(","))
        else:
            aliases = await version_aliases(conn, key)
        out.append(render_version(row, direct.get(key, []) if tags is None else tags, aliases))
    return out


async def load_versions(conn: AsyncConnection, keys: Sequence[VersionKey]) -> list[dict[str, Any]]:
    """ModelVersion messages for `keys`, in that order; deleted or unknown keys are skipped."""
    return await render_versions(conn, list((await version_rows(conn, keys)).values()))


def _render_model(
    row: Any, tags: Tags, aliases: list[tuple[str, str]], latest: list[dict[str, Any]]
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
        out["aliases"] = [{"alias": alias, "version": version} for alias, version in aliases]
    return out


async def render_models(conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """RegisteredModel messages (tags, aliases, latest version per stage) for `MODEL_ROW`s."""
    ids = [r.id for r in rows]
    parsed = _parsed_tags(conn, rows)
    missing = [i for i, tags in zip(ids, parsed, strict=True) if tags is None]
    direct = await model_tags(conn, missing) if missing else {}
    latest_rows = await latest_version_rows(conn, ids) if ids else []
    latest: dict[int, list[dict[str, Any]]] = {}
    for row, message in zip(latest_rows, await render_versions(conn, latest_rows), strict=True):
        latest.setdefault(row.registered_model_id, []).append(message)
    out = []
    for row, tags in zip(rows, parsed, strict=True):
        text = row.alias_list
        if not text:
            aliases = []
        elif len(text) < MAYBE_CUT:
            aliases = sorted(tuple(item.rsplit(":", 1)) for item in text.split(","))
        else:
            aliases = await model_aliases(conn, row.id)
        out.append(
            _render_model(
                row, direct.get(row.id, []) if tags is None else tags, aliases, latest.get(row.id, [])
            )
        )
    return out


async def load_models(conn: AsyncConnection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """RegisteredModel messages for `ids`, in that order; unknown ids are skipped."""
    found = await model_rows(conn, ids)
    return await render_models(conn, [found[i] for i in ids if i in found])


Render = Callable[["AsyncConnection", Sequence[Any]], Awaitable[list[dict[str, Any]]]]


class PageSearch:
    """One registry search: a page of messages and the token of the next page.

    `select` compiles the filter and order (see tracking_core/search); its page is read as
    `columns` and rendered by `render`, or, on backends registry_json.py supports, as the one
    `json_column` of finished messages.
    """

    def __init__(
        self, select: Callable[..., sa.Select[Any]], columns: Sequence[Any], json_column: Any, render: Render
    ) -> None:
        self._rows = cached_page_statement(select, columns)
        self._json = cached_page_statement(select, (json_column,))
        self._render = render

    async def __call__(
        self,
        db: Database,
        filter_string: str | None,
        order_by: list[str],
        max_results: int,
        token: str | None,
        where: Sequence[Any] = (),
    ) -> tuple[list[Any], str | None]:
        """`where`: extra conditions, such as what the caller may read (tracking_core.authz)."""
        offset = page_token.decode(token)
        as_json = db.dialect in registry_json.SUPPORTED
        # Built (or found in the cache) before a connection is taken: a bad filter costs none.
        stmt = (self._json if as_json else self._rows)(filter_string, tuple(order_by), max_results + 1, offset)
        if where:
            stmt = stmt.where(*where)
        async with db.read() as conn:
            if as_json:
                rows = await plain_rows(conn, stmt)
                found = registry_json.messages(rows[:max_results])
            else:
                rows = (await conn.execute(stmt)).all()
                found = await self._render(conn, rows[:max_results])
        return found, page_token.encode(offset + max_results) if len(rows) > max_results else None
