"""`trackgate db upgrade` run three times at once on one database (as two pipelines, or a retried
Job, would): one migrates, the others wait for the schema lock and find the work done."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import throwaway_mariadb, throwaway_postgres
from tracking_core.store.database import async_url
from tracking_core.store.schema import head_revision

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def sqlite_database(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path}/shared.db"


BACKENDS: dict[str, Callable[[Path], Any]] = {
    "sqlite": sqlite_database,
    "postgresql": lambda _: throwaway_postgres(),
    "mariadb": lambda _: throwaway_mariadb(),
}


async def _at_revision(uri: str, revision: str | None) -> str | None:
    """Migrate to `revision` (None: only read); the revision the database is at."""
    engine = create_async_engine(async_url(uri))

    def run(sync_conn: sa.Connection) -> str | None:
        if revision is not None:
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", "tracking_core.store:migrations")
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, revision)
        return MigrationContext.configure(sync_conn).get_current_revision()

    try:
        async with engine.begin() as conn:
            return await conn.run_sync(run)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_concurrent_db_upgrades_migrate_once(backend: str, tmp_path: Path) -> None:
    with BACKENDS[backend](tmp_path) as uri:
        assert asyncio.run(_at_revision(uri, "0001")) == "0001"
        runs = [
            subprocess.Popen([sys.executable, "-m", "gateway.cli", "db", "upgrade", uri],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        results = [(p.wait(120), *p.communicate()) for p in runs]
        assert [code for code, _, _ in results] == [0, 0, 0], results
        outputs = [out for _, out, _ in results]
        assert sum("Upgraded" in out for out in outputs) == 1, outputs
        assert sum("already at schema revision" in out for out in outputs) == 2, outputs
        assert asyncio.run(_at_revision(uri, None)) == head_revision()
