"""Real databases built from our schema, configured like the server's engine.

The search tables are run on SQLite always, and on PostgreSQL and MariaDB when those servers are
up (see tests/services.py): collation, boolean and NULL-ordering differences between backends are
exactly what a compiled-SQL search can get wrong. There is no sync PostgreSQL driver installed, so
that backend goes through asyncpg, one short event loop per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import throwaway_mariadb, throwaway_postgres
from tracking_core.store import tables

BACKENDS = ["sqlite", "postgresql", "mariadb"]

Rows = Sequence[tuple[sa.Table, list[dict[str, Any]]]]


def sqlite_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")

    # The server does the same: MLflow's LIKE is case-sensitive, SQLite's is not by default.
    @sa.event.listens_for(engine, "connect")
    def _case_sensitive_like(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA case_sensitive_like=ON")

    return engine


class SyncDb:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        tables.metadata.create_all(engine)

    def load(self, rows: Rows) -> None:
        with self.engine.begin() as conn:
            for table, values in rows:
                if values:
                    conn.execute(sa.insert(table), values)

    def fetch(self, stmt: sa.Select[Any]) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.scalars(stmt))


class AsyncDb:
    def __init__(self, url: str) -> None:
        self.url = url
        asyncio.run(self._run(lambda conn: conn.run_sync(tables.metadata.create_all)))

    async def _run(self, work: Any) -> Any:
        # NullPool: a pooled asyncpg connection must not outlive the loop that opened it.
        engine = create_async_engine(self.url, poolclass=sa.NullPool)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    def load(self, rows: Rows) -> None:
        async def insert(conn: Any) -> None:
            for table, values in rows:
                if values:
                    await conn.execute(sa.insert(table), values)

        asyncio.run(self._run(insert))

    def fetch(self, stmt: sa.Select[Any]) -> list[Any]:
        async def select(conn: Any) -> list[Any]:
            return list((await conn.execute(stmt)).scalars())

        return list(asyncio.run(self._run(select)))


SearchDb = SyncDb | AsyncDb


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[SearchDb]:
    """An empty database with our tables; skips (or fails in CI) when the server is missing."""
    if backend == "sqlite":
        engine = sqlite_engine(tmp / "search.db")
        yield SyncDb(engine)
        engine.dispose()
    elif backend == "postgresql":
        with throwaway_postgres() as url:
            yield AsyncDb(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    else:
        with throwaway_mariadb() as url:
            engine = sa.create_engine(url.replace("mysql://", "mysql+pymysql://", 1))
            yield SyncDb(engine)
            engine.dispose()
