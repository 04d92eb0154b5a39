"""PostgreSQL targets: per-row key checks are turned off only where the login may, and only for
runs that exist; a login without that right imports the same points with the checks on."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from bench.bench_import import build_source
from tests.importer.processes import run_import
from tests.services import PG_ADMIN_URL, throwaway_postgres

pytestmark = pytest.mark.slow

POINTS = 2_000  # 100 runs of 20 (bench_import's shape)


def _pg(uri: str) -> str:
    return uri.replace("postgresql://", "postgres://", 1)


async def _fetch(uri: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_pg(uri))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _may_skip(uri: str) -> bool:
    from tracking_core.importer.pg_metrics import may_skip_key_checks

    conn = await asyncpg.connect(_pg(uri))
    try:
        return await may_skip_key_checks(conn)
    finally:
        await conn.close()


def test_superuser_skips_checks_and_plain_owner_keeps_them() -> None:
    role = f"tg_importer_{secrets.token_hex(4)}"
    with throwaway_postgres() as source, throwaway_postgres() as target, throwaway_postgres() as owned:
        build_source(source, POINTS)
        name = owned.rsplit("/", 1)[1]
        asyncio.run(_fetch(PG_ADMIN_URL, f"CREATE ROLE {role} LOGIN"))
        try:
            asyncio.run(_fetch(PG_ADMIN_URL, f'ALTER DATABASE "{name}" OWNER TO {role}'))
            asyncio.run(_fetch(owned, f"ALTER SCHEMA public OWNER TO {role}"))
            as_owner = owned.replace("postgres@", f"{role}@", 1)
            assert asyncio.run(_may_skip(target)) is True  # the admin login of this machine
            assert asyncio.run(_may_skip(as_owner)) is False

            for uri in (target, as_owner):
                done = run_import(source, uri, "--batch-size", "500")
                assert done.returncode == 0, done.stderr
                rows = asyncio.run(_fetch(uri, "SELECT count(*) FROM metrics"))
                assert rows[0][0] == POINTS
                orphans = asyncio.run(
                    _fetch(uri, "SELECT count(*) FROM metrics m LEFT JOIN runs r USING (run_id) WHERE r.run_id IS NULL")
                )
                assert orphans[0][0] == 0
        finally:
            asyncio.run(_fetch(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            asyncio.run(_fetch(PG_ADMIN_URL, f"DROP ROLE IF EXISTS {role}"))


def test_points_of_a_run_missing_from_the_target_are_not_written() -> None:
    """The runs are locked first; a run the target lacks (deleted meanwhile) gets no points, even
    with the per-row checks off."""
    from tracking_core.importer import pg_metrics

    async def scenario(uri: str) -> tuple[list[str], str]:
        from tracking_core.settings import CoreSettings
        from tracking_core.store import schema

        await schema.prepare(CoreSettings(backend_store_uri=uri, default_artifact_root="/tmp"), uri)
        conn = await asyncpg.connect(_pg(uri))
        try:
            await conn.execute(
                "INSERT INTO runs (run_id, experiment_id, name, user_id, status, start_time, lifecycle_stage, "
                "artifact_uri) VALUES ($1, 0, 'r', 'u', 'FINISHED', 1, 'active', 'x')",
                "a" * 32,
            )
            points = [(run, "loss", 0, 1, 0.5, False) for run in ("a" * 32, "b" * 32)]
            async with conn.transaction():
                await pg_metrics.write_records(conn, points, fresh=True, skip_key_checks=True)
            kept = [r[0] for r in await conn.fetch("SELECT run_id FROM metrics")]
            role = await conn.fetchval("SHOW session_replication_role")  # SET LOCAL ended with the transaction
            return kept, role
        finally:
            await conn.close()

    with throwaway_postgres() as uri:
        kept, role = asyncio.run(scenario(uri))
    assert kept == ["a" * 32]
    assert role == "origin"
