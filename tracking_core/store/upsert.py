"""Dialect-aware "insert or ignore" and "insert or update": the store's idempotent writes.

The client retries POSTs on 5xx and 429, so re-sending a metric point, a tag or a dataset must
succeed without duplicating anything; these helpers make each of those one statement where the
database allows it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


def _primary_key(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


@functools.cache
def _insert_ignore_statement(dialect: str, table: sa.Table) -> Any:
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return mysql.insert(table).prefix_with("IGNORE")
    return None


async def insert_ignore(conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, silently skipping any whose primary or unique key already exists."""
    if not rows:
        return
    stmt = _insert_ignore_statement(conn.dialect.name, table)
    if stmt is None:
        for row in rows:
            try:
                async with conn.begin_nested():
                    await conn.execute(table.insert().values(**row))
            except sa.exc.IntegrityError:
                pass
        return
    await conn.execute(stmt, list(rows))


@functools.cache
def _upsert_statement(dialect: str, table: sa.Table, update: tuple[str, ...]) -> Any:
    keys = _primary_key(table)
    if dialect in ("sqlite", "postgresql"):
        base = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
        return base.on_conflict_do_update(index_elements=keys, set_={c: base.excluded[c] for c in update})
    if dialect in ("mysql", "mariadb"):
        base = mysql.insert(table)
        return base.on_duplicate_key_update({c: base.inserted[c] for c in update})
    return None


async def upsert(
    conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]], update: Sequence[str]
) -> None:
    """Insert rows, or overwrite the `update` columns of rows whose primary key exists."""
    if not rows:
        return
    keys = _primary_key(table)
    # One statement may not touch a row twice (PostgreSQL refuses); the last value for a key wins.
    rows = list({tuple(r[k] for k in keys): r for r in rows}.values())
    stmt = _upsert_statement(conn.dialect.name, table, tuple(update))
    if stmt is not None:
        await conn.execute(stmt, rows)
        return
    for row in rows:
        where = [table.c[k] == row[k] for k in keys]
        result = await conn.execute(table.update().where(*where).values({c: row[c] for c in update}))
        if result.rowcount == 0:
            await conn.execute(table.insert().values(**row))
