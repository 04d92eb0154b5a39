"""Metric points into PostgreSQL by COPY, and PostgreSQL to PostgreSQL without Python in the loop.

What a point costs PostgreSQL: its primary-key entry, and the foreign-key check onto `runs`, a
lookup with a row lock per point that costs more than the insert itself (measured 4x). So when the
login may (superuser, or PostgreSQL 15+'s `GRANT SET ON PARAMETER session_replication_role`),
each transaction locks its runs once, `FOR KEY SHARE` as the check itself would, and turns the
per-row checks off for itself alone (`SET LOCAL session_replication_role = replica`): the same
guarantee, one lock per run instead of one per point. Nothing is dropped or altered; other
sessions, the server's among them, keep every check. Without that right, the checks stay on.

A "fresh" run (no point in the target yet) is COPied straight into `metrics`; a "partial" one (an
interrupted import, or MLflow logged more since) goes through a session temp table and one
INSERT ... ON CONFLICT DO NOTHING, since COPY cannot skip the points already there.

Between two PostgreSQL databases the points never become Python objects: the source's
`COPY (SELECT ...) TO STDOUT (FORMAT binary)` is streamed into the target's `COPY ... FROM STDIN`
through a small queue of raw chunks (memory stays flat), the selected columns cast to the
target's types so the binary rows fit as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tracking_core.importer.rows import METRIC_COLUMNS, MetricPoint

STAGING = "import_metrics"
_COLUMNS = ", ".join(f'"{c}"' for c in METRIC_COLUMNS)
# MLflow's metrics table, in trackgate's column order and types (older MLflow releases differ in
# a type here and there; the casts make every one of them binary-compatible with the target).
SOURCE_QUERY = (
    'SELECT run_uuid::varchar(32), "key"::varchar(250), step::bigint, "timestamp"::bigint, '
    '"value"::float8, is_nan::boolean FROM metrics WHERE run_uuid = ANY($1::text[])'
)
QUEUED_CHUNKS = 16  # raw COPY chunks in flight between the two connections (each some KiB)


async def may_skip_key_checks(raw: Any) -> bool:
    """Whether this login may turn the per-row key checks off for its own transactions."""
    try:
        async with raw.transaction():
            await raw.execute("SET LOCAL session_replication_role = replica")
    except Exception:  # asyncpg.InsufficientPrivilegeError, or a server that has no such setting
        return False
    return True


async def prepare(raw: Any, run_ids: Sequence[str], skip_key_checks: bool) -> list[str]:
    """Inside the caller's transaction: lock the runs (the key check, once per run), turn the
    per-row checks off when allowed, and return the runs that exist (a run deleted from the
    target meanwhile gets no points)."""
    # A commit need not wait for its WAL flush: should the server crash, the last groups are
    # simply missing, and the next import (which compares counts) copies them again.
    await raw.execute("SET LOCAL synchronous_commit = off")
    if not skip_key_checks:
        return list(run_ids)
    rows = await raw.fetch("SELECT run_id FROM runs WHERE run_id = ANY($1::text[]) FOR KEY SHARE", list(run_ids))
    await raw.execute("SET LOCAL session_replication_role = replica")
    return [r[0] for r in rows]


async def _staging(raw: Any) -> None:
    await raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} AS SELECT {_COLUMNS} FROM metrics WITH NO DATA; TRUNCATE {STAGING}"
    )


async def _merge(raw: Any) -> int:
    status = await raw.execute(
        f"INSERT INTO metrics ({_COLUMNS}) SELECT {_COLUMNS} FROM {STAGING} ON CONFLICT DO NOTHING"
    )
    return int(status.split()[-1])


async def write_records(raw: Any, points: list[MetricPoint], fresh: bool, skip_key_checks: bool) -> None:
    """Points built in Python (any other source), in the caller's transaction."""
    runs = sorted({p[0] for p in points})
    kept = set(await prepare(raw, runs, skip_key_checks))
    if len(kept) < len(runs):
        points = [p for p in points if p[0] in kept]
    if fresh:
        await raw.copy_records_to_table("metrics", records=points, columns=list(METRIC_COLUMNS))
        return
    await _staging(raw)
    await raw.copy_records_to_table(STAGING, records=points, columns=list(METRIC_COLUMNS))
    await _merge(raw)


async def pipe(source: Any, target: Any, run_ids: Sequence[str], fresh: bool, skip_key_checks: bool) -> int:
    """Every point of `run_ids` from the source connection into the target's transaction; returns
    the number of points the source sent."""
    runs = await prepare(target, run_ids, skip_key_checks)
    if not runs:
        return 0
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUED_CHUNKS)

    async def produce() -> str:
        try:
            status = await source.copy_from_query(SOURCE_QUERY, runs, output=queue.put, format="binary")
        except Exception:
            await queue.put(None)  # ends the target's COPY; the error is raised below
            raise
        await queue.put(None)
        return str(status)

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    reader = asyncio.create_task(produce())
    try:
        if not fresh:
            await _staging(target)
        await target.copy_to_table(
            "metrics" if fresh else STAGING, source=chunks(), columns=list(METRIC_COLUMNS), format="binary"
        )
        sent = await reader  # a failed read raises here, and the caller's transaction rolls back
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    if not fresh:
        await _merge(target)
    return int(sent.split()[-1])
