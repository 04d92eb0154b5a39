"""One import, start to finish: open both sides, check, copy entity by entity, then metrics.

Order of work, and why:
1. the target is made current (an empty database gets trackgate's schema; MLflow's own database
   or an out-of-date one is refused by `schema.prepare`);
2. every clash is found before the first write, so a refused import changes nothing;
3. entities are copied parents first, each batch its own transaction;
4. metric histories last, run by run, skipping what the target holds already (metrics_copy), so
   a rerun resumes an interrupted import and a later one catches up with what MLflow wrote since.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tracking_core.importer.auth_import import import_auth
from tracking_core.importer.detect import ImportRefused, is_mlruns
from tracking_core.importer.metrics_copy import MetricRuns, Mover, PipeMover, SqliteMover, StreamMover, copy_metrics
from tracking_core.importer.progress import Progress
from tracking_core.importer.rows import ENTITIES, Source
from tracking_core.importer.sql_source import SqlSource
from tracking_core.importer.sqlite_bulk import SqliteCopier, sqlite_file
from tracking_core.importer.writer import MAX_CLASHES_SHOWN, Target
from tracking_core.settings import CoreSettings, mask_uri
from tracking_core.store import schema
from tracking_core.store.database import async_url, create_engine

DEFAULT_BATCH_SIZE = 10_000
ProgressFactory = Callable[[dict[str, int]], Progress]


@dataclass
class Report:
    source: str
    revision: str
    counts: dict[str, int] = field(default_factory=dict)
    metric_runs: MetricRuns = field(default_factory=MetricRuns)
    dry_run: bool = False
    auth_counts: dict[str, int] = field(default_factory=dict)


def _file_store_path(source: str) -> Path | None:
    path = source[len("file:") :].removeprefix("//") if source.startswith("file:") else source
    return Path(path) if "://" not in source or source.startswith("file:") else None


@contextlib.asynccontextmanager
async def open_source(source: str, batch_size: int) -> AsyncIterator[Source]:
    """The reader for `source`: an MLflow database URI, or the path of a `./mlruns` folder."""
    path = _file_store_path(source)
    if path is not None:
        if not is_mlruns(path):
            raise ImportRefused(f"{source} is neither a database URI nor an MLflow ./mlruns folder.")
        from tracking_core.importer.file_source import FileSource  # lazy: yaml only for file stores

        yield FileSource(path, batch_size)
        return
    if source.startswith("sqlite:///") and not Path(source[len("sqlite:///") :]).is_file():
        raise ImportRefused(f"There is no SQLite database at {source}.")
    # A plain engine: the source is only read, and keeps its journal mode and settings.
    engine = create_async_engine(async_url(source))
    try:
        try:
            conn = await engine.connect()
        except sa.exc.OperationalError as exc:
            raise ImportRefused(f"Cannot open the source {mask_uri(source)}: {exc.orig}") from None
        try:
            yield await SqlSource.open(conn, mask_uri(source), batch_size)
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def _target_is_empty(config: CoreSettings, uri: str) -> bool:
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        return True
    engine = create_engine(config, uri)
    try:
        async with engine.connect() as conn:
            return "experiments" not in await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()


async def import_mlflow(
    source_uri: str,
    config: CoreSettings,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: ProgressFactory | None = None,
    auth_db: str | None = None,
) -> Report:
    """Import `source_uri` into `config.backend_store_uri`; ImportRefused (nothing written) if it cannot."""
    target_uri = config.backend_store_uri
    async with open_source(source_uri, batch_size) as source:
        report = Report(source.description, source.revision, dry_run=dry_run)
        totals = {entity: await source.count(entity) for entity in (*ENTITIES, "metrics")}
        report.counts = totals
        empty = dry_run and await _target_is_empty(config, target_uri)
        if not dry_run:
            try:
                await schema.prepare(config, target_uri)
            except schema.SchemaError as exc:
                raise ImportRefused(f"The target cannot be imported into: {exc}") from None
        engine = create_engine(config, target_uri)
        try:
            target = Target(engine)
            clashes = [] if empty else await target.clashes(source)
            if clashes:
                shown = "\n  ".join(clashes[:MAX_CLASHES_SHOWN])
                hidden = len(clashes) - MAX_CLASHES_SHOWN
                more = f"\n  ... and {hidden} more" if hidden > 0 else ""
                raise ImportRefused(
                    f"{mask_uri(target_uri)} already holds different entities with the source's ids; nothing was "
                    f"imported. Import into a new database, or remove these first:\n  {shown}{more}"
                )
            if not dry_run:
                files = _sqlite_pair(source, source_uri, target_uri)
                await _copy(source, target, report, progress(totals) if progress else None, files)
            elif not empty:  # a rerun's dry run: which runs' histories would be copied or topped up
                report.metric_runs = await copy_metrics(
                    source, target, _Plan(), lambda _: None, batch_size, dry_run=True
                )
            if auth_db is not None and not empty:
                report.auth_counts = await import_auth(auth_db, engine, dry_run=dry_run)
        finally:
            await engine.dispose()
    return report


def _sqlite_pair(source: Source, source_uri: str, target_uri: str) -> tuple[str, str] | None:
    """(source file, target file) when both sides are SQLite files: metrics are then copied by
    SQLite itself (sqlite_bulk)."""
    if not isinstance(source, SqlSource):
        return None
    source_file, target_file = sqlite_file(source_uri), sqlite_file(target_uri)
    return (source_file, target_file) if source_file and target_file else None


class _Plan:
    """A Mover that moves nothing: what a dry run reports."""

    async def copy(self, run_ids: list[str], *, fresh: bool) -> None:
        return None


@contextlib.asynccontextmanager
async def _mover(source: Source, target: Target, files: tuple[str, str] | None) -> AsyncIterator[Mover]:
    """The fastest way this pair of databases can move points (metrics_copy.Mover)."""
    if files is not None:
        copier = await SqliteCopier.open(files[1], files[0])
        try:
            yield SqliteMover(copier)
        finally:
            await copier.close()
        return
    source_raw = await source.postgresql_connection() if isinstance(source, SqlSource) else None
    if source_raw is not None and target.dialect == "postgresql":
        yield PipeMover(source_raw, target)
    else:
        yield StreamMover(source, target)


async def _copy(
    source: Source, target: Target, report: Report, progress: Progress | None, files: tuple[str, str] | None
) -> None:
    try:
        for entity in ENTITIES:
            async for batch in source.batches(entity):
                await target.write(entity, batch)
                if progress:
                    progress.advance(entity, len(batch))
        async with _mover(source, target, files) as mover:
            report.metric_runs = await copy_metrics(
                source,
                target,
                mover,
                lambda n: progress.advance("metrics", n) if progress else None,
                source.batch_size,
            )
        await target.finish()
    finally:
        if progress:
            progress.close()
