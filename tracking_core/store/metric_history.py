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


# Past this many points a history is sampled by seeking (below): fetching every distinct step of a
# million-point metric into Python took seconds; seeking 2,500 steps through the primary key takes ms.
SEEK_ABOVE = 10_000
_SEEKS_PER_QUERY = 200  # SQLite allows 500 terms in a compound SELECT


def _seeks() -> sa.CompoundSelect:
    """One statement of `_SEEKS_PER_QUERY` index seeks (the first step at or after :t<i>), built and
    compiled once: building a 200-part UNION per request cost more than running it."""
    return sa.union_all(*(
        sa.select(sa.func.min(M.c.step).label("step")).where(
            M.c.run_id == sa.bindparam("run_id"), M.c.key == sa.bindparam("key"), M.c.step >= sa.bindparam(f"t{i}")
        )
        for i in range(_SEEKS_PER_QUERY)
    ))


_SEEKS = _seeks()


def _seek_targets(low: int, high: int, gap: int, max_results: int) -> list[int]:
    """Step values to seek: where `sample_steps` would pick if the steps were `low, low+gap, ..`
    up to `high` (a training loop's steps), so such a history samples exactly as MLflow does."""
    count = (high - low) // gap + 1 if gap > 0 else 1
    if count <= max_results:
        return list(range(low, high + 1, gap)) if gap > 0 else [low]
    if max_results == 1:
        return [low]
    stride = (count - 1) / (max_results - 1)
    return sorted({low + gap * round(i * stride) for i in range(max_results)})


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
                steps = await self._sampled_steps(conn, run_id, key, in_range, max_results)
                if not steps:
                    continue
                rows = await conn.execute(
                    sa.select(M.c.run_id, M.c.key, M.c.value, M.c.is_nan, M.c.timestamp, M.c.step)
                    .where(M.c.run_id == run_id, M.c.key == key, M.c.step.in_(steps))
                    .order_by(M.c.step, M.c.timestamp)
                )
                out.extend(_point(r) for r in rows)
        return out

    @staticmethod
    async def _sampled_steps(conn: Any, run_id: str, key: str, in_range: list[Any], max_results: int) -> list[int]:
        """The steps to return: MLflow's rank-based sample for ordinary histories; for long ones,
        the first step at or after each of `max_results` evenly spaced step values, found by index
        seeks (exactly MLflow's sample when the steps are evenly spaced, as a training loop logs them)."""
        where = [M.c.run_id == run_id, *in_range]
        beyond = sa.select(M.c.step).where(*where).order_by(M.c.step).limit(1).offset(SEEK_ABOVE)
        if (await conn.execute(beyond)).first() is None:
            steps_stmt = sa.select(M.c.step).where(*where).distinct().order_by(M.c.step)
            return sample_steps(list((await conn.execute(steps_stmt)).scalars().all()), max_results)
        # Two ordered LIMIT 1 reads: each is one index seek (MIN and MAX in one SELECT scan on SQLite).
        first = sa.select(M.c.step).where(*where).limit(1)
        low = (await conn.execute(first.order_by(M.c.step))).scalar_one()
        high = (await conn.execute(first.order_by(M.c.step.desc()))).scalar_one()
        after_low = sa.select(M.c.step).where(*where, M.c.step > low).order_by(M.c.step).limit(1)
        second = (await conn.execute(after_low)).scalar_one_or_none()
        targets = _seek_targets(low, high, (second - low) if second is not None else 0, max_results)
        found: set[int] = {high}
        for start in range(0, len(targets), _SEEKS_PER_QUERY):
            batch = targets[start : start + _SEEKS_PER_QUERY]
            batch += [batch[-1]] * (_SEEKS_PER_QUERY - len(batch))  # repeated seeks are harmless
            bound = {"run_id": run_id, "key": key, **{f"t{i}": t for i, t in enumerate(batch)}}
            # Every target lies in [low, high], so each seek lands on a step inside the range.
            found.update(s for s in (await conn.execute(_SEEKS, bound)).scalars() if s is not None)
        return sorted(found)
