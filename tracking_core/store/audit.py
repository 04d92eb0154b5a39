"""The audit log table: batched inserts, admin queries, pruning in bounded slices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tracking_core.store.database import Database
from tracking_core.store.tables import audit_log

A = audit_log.c
PRUNE_SLICE = 1000
MAX_LIST = 10_000


async def insert(db: Database, records: Sequence[dict[str, Any]]) -> None:
    if records:
        async with db.write() as conn:
            await conn.execute(audit_log.insert(), list(records))


async def query(
    db: Database,
    since_ms: int,
    subject: str | None = None,
    action: str | None = None,
    max_results: int = 1000,
) -> list[dict[str, Any]]:
    stmt = sa.select(audit_log).where(A.time_ms >= since_ms)
    if subject:
        stmt = stmt.where(A.subject == subject)
    if action:
        stmt = stmt.where(A.action == action)
    stmt = stmt.order_by(A.time_ms.desc(), A.id.desc()).limit(min(max_results, MAX_LIST))
    async with db.read() as conn:
        return [{str(k): v for k, v in r._mapping.items()} for r in await conn.execute(stmt)]


async def prune(db: Database, before_ms: int, max_slices: int | None = None) -> int:
    """Delete records older than `before_ms`, PRUNE_SLICE at a time (short write transactions,
    so logging never waits long behind the pruning)."""
    removed, slices = 0, 0
    while max_slices is None or slices < max_slices:
        async with db.write() as conn:
            ids = (await conn.execute(
                sa.select(A.id).where(A.time_ms < before_ms).order_by(A.id).limit(PRUNE_SLICE)
            )).scalars().all()
            if ids:
                await conn.execute(audit_log.delete().where(A.id.in_(ids)))
        removed += len(ids)
        slices += 1
        if len(ids) < PRUNE_SLICE:
            break
    return removed
