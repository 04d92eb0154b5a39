"""Metric histories, planned run by run: a rerun resumes, and a later import catches up.

The source's runs with points come with their point counts, a chunk of runs at a time; the target
is asked how many points it holds for each. Then, per run:
- the target lacks the run: MLflow made it after the runs were copied; the next import takes it;
- the target has no point of it: "fresh", copied straight in;
- the target has fewer: "partial" (an interrupted import, or MLflow logged more since, in a run
  of any age): every point of the run is sent again, and those already there are skipped;
- the target has as many: complete, skipped.
Equal counts mean equal points: MLflow only ever adds points to a run, and both MLflow's table and
trackgate's are keyed by the whole point, so a point is never held twice on either side.

Runs are copied in groups of about `batch_size` points, one transaction per group, by the fastest
way the pair of databases allows (`Mover`): SQLite copies from an attached SQLite file itself,
PostgreSQL streams COPY from PostgreSQL, anything else goes through Python batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tracking_core.importer.rows import Source
from tracking_core.importer.sqlite_bulk import SqliteCopier
from tracking_core.importer.writer import Target

T = TypeVar("T")
MAX_RUNS_PER_GROUP = 1_000


@dataclass
class MetricRuns:
    """What the metrics phase found, in runs."""

    copied: int = 0  # fresh runs
    resumed: int = 0  # partial runs, topped up
    complete: int = 0  # already all there
    not_yet: int = 0  # made in MLflow after its runs were copied


class Mover(Protocol):
    async def copy(self, run_ids: list[str], *, fresh: bool) -> None: ...


class SqliteMover:
    def __init__(self, copier: SqliteCopier) -> None:
        self.copier = copier

    async def copy(self, run_ids: list[str], *, fresh: bool) -> None:
        await self.copier.copy(run_ids)  # INSERT OR IGNORE either way


class PipeMover:
    def __init__(self, source_raw: Any, target: Target) -> None:
        self.source_raw, self.target = source_raw, target

    async def copy(self, run_ids: list[str], *, fresh: bool) -> None:
        await self.target.pipe_metrics(self.source_raw, run_ids, fresh=fresh)


class StreamMover:
    """Batches of points through Python, the next read while the last is written."""

    def __init__(self, source: Source, target: Target) -> None:
        self.source, self.target = source, target

    async def copy(self, run_ids: list[str], *, fresh: bool) -> None:
        straight = fresh and self.source.unique_points
        async for batch in _read_ahead(self.source.metrics(run_ids)):
            await self.target.write_metrics(batch, fresh=straight)


async def copy_metrics(
    source: Source,
    target: Target,
    mover: Mover,
    advance: Callable[[int], None],
    points_per_group: int,
    *,
    dry_run: bool = False,
) -> MetricRuns:
    """Every source point the target lacks, run group by run group. `dry_run`: the runs are not
    in the target yet because nothing was written; count a missing run as one to copy."""
    found = MetricRuns()
    async for chunk in source.metric_counts():
        have = await target.metric_counts([run for run, _ in chunk])
        fresh: list[tuple[str, int]] = []
        partial: list[tuple[str, int]] = []
        for run, count in chunk:
            held = have.get(run, 0 if dry_run else None)
            if held is None:
                found.not_yet += 1
            elif held >= count:
                found.complete += 1
                advance(count)
            else:
                (partial if held else fresh).append((run, count))
        found.copied += len(fresh)
        found.resumed += len(partial)
        for runs, is_fresh in ((fresh, True), (partial, False)):
            for group in _groups(runs, points_per_group):
                await mover.copy([run for run, _ in group], fresh=is_fresh)
                advance(sum(count for _, count in group))
    return found


def _groups(runs: list[tuple[str, int]], points: int) -> list[list[tuple[str, int]]]:
    """Consecutive runs in groups of about `points` points (a bigger run is a group alone)."""
    groups: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    total = 0
    for run, count in runs:
        if current and (total + count > points or len(current) >= MAX_RUNS_PER_GROUP):
            groups.append(current)
            current, total = [], 0
        current.append((run, count))
        total += count
    if current:
        groups.append(current)
    return groups


async def _read_ahead(batches: AsyncIterator[T], depth: int = 2) -> AsyncIterator[T]:
    """Read the next batches while the current one is written: source and target are separate
    connections (and, on SQLite, separate threads), so the two overlap."""
    queue: asyncio.Queue[tuple[T | None, BaseException | None, bool]] = asyncio.Queue(depth)

    async def produce() -> None:
        try:
            async for batch in batches:
                await queue.put((batch, None, False))
            await queue.put((None, None, True))
        except Exception as exc:  # handed to the consumer, which raises it in its own frame
            await queue.put((None, exc, True))

    task = asyncio.create_task(produce())
    try:
        while True:
            batch, error, finished = await queue.get()
            if error is not None:
                raise error
            if finished:
                return
            yield batch  # type: ignore[misc]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
