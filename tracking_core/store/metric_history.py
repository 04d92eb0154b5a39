"""Metric history reads: paged full history, and the sampled history the UI charts use."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tracking_core.errors import invalid
from tracking_core.search import page_token
from tracking_core.store import tables
from tracking_core.store.database import Database
from tracking_core.store.rows import plain_rows
from tracking_core.store.run_render import number_out
from tracking_core.store.runs import require_run

M = tables.metrics


def _point(row: Any) -> dict[str, Any]:
    """A point of get-history-bulk-interval, which names its run."""
    value = number_out(row.value, row.is_nan)
    return {"key": row.key, "value": value, "timestamp": row.timestamp, "step": row.step, "run_id": row.run_id}


def sample_steps(steps: list[int], max_results: int) -> list[int]:
    """At most `max_results` evenly spaced steps, always keeping the first and the last."""
    if len(steps) <= max_results:
        return steps
    if max_results == 1:
        return [steps[0]]
    stride = (len(steps) - 1) / (max_results - 1)
    picked = {steps[round(i * stride)] for i in range(max_results)}
    return sorted(picked)


class MetricHistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def history(
        self, run_id: str, key: str, max_results: int | None, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        offset = page_token.decode(token)
        stmt = (
            sa.select(M.c.value, M.c.is_nan, M.c.timestamp, M.c.step)
            .where(M.c.run_id == run_id, M.c.key == key)
            .order_by(M.c.timestamp, M.c.step, M.c.value)
        )
        if max_results is not None:
            stmt = stmt.limit(max_results + 1).offset(offset)
        async with self.db.read() as conn:
            await require_run(conn, run_id, active=False)
            rows = await plain_rows(conn, stmt)
        token = None
        if max_results is not None and len(rows) > max_results:
            rows, token = rows[:max_results], page_token.encode(offset + max_results)
        # The hot loop of a long history: plain tuples, and ±inf never comes back (stored clamped).
        points = [
            {"key": key, "value": "NaN" if nan else value, "timestamp": timestamp, "step": step}
            for value, nan, timestamp, step in rows
        ]
        return points, token

    async def bulk_interval(
        self, run_ids: list[str], key: str, start_step: int | None, end_step: int | None, max_results: int
    ) -> list[dict[str, Any]]:
        if (start_step is None) != (end_step is None):
            raise invalid("If either start step or end step are specified, both must be specified.")
        if start_step is not None and end_step is not None and start_step > end_step:
            raise invalid("end_step must be greater than or equal to start_step.")
        in_range = [M.c.key == key]
        if start_step is not None:
            in_range += [M.c.step >= start_step, M.c.step <= end_step]
        out: list[dict[str, Any]] = []
        async with self.db.read() as conn:
            for run_id in sorted(set(run_ids)):
                steps_stmt = sa.select(M.c.step).where(M.c.run_id == run_id, *in_range).distinct().order_by(M.c.step)
                steps = sample_steps(list((await conn.execute(steps_stmt)).scalars().all()), max_results)
                if not steps:
                    continue
                rows = await conn.execute(
                    sa.select(M.c.run_id, M.c.key, M.c.value, M.c.is_nan, M.c.timestamp, M.c.step)
                    .where(M.c.run_id == run_id, M.c.key == key, M.c.step.in_(steps))
                    .order_by(M.c.step, M.c.timestamp)
                )
                out.extend(_point(r) for r in rows)
        return out
