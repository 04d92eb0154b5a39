"""Access to the real services tests use, with one rule for when one is missing.

Locally a missing service skips the test with a message saying what is missing; in CI
(`TRACKGATE_REQUIRE_SERVICES=1`) it fails, so a green CI always means the test ran.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("TRACKGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("TRACKGATE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")


def missing(what: str) -> None:
    if os.environ.get("TRACKGATE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {what}")
    pytest.skip(f"service not available: {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test run; dropped afterwards."""
    import asyncio

    import asyncpg

    name = f"tg_test_{secrets.token_hex(4)}"
    admin = PG_ADMIN_URL.replace("postgresql://", "postgres://")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        missing(f"PostgreSQL at {PG_ADMIN_URL} ({exc})")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def throwaway_mariadb() -> Iterator[str]:
    """A new, empty MariaDB database for one test run; dropped afterwards."""
    name = f"tg_test_{secrets.token_hex(4)}"
    engine = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    except sa.exc.OperationalError as exc:
        engine.dispose()
        missing(f"MariaDB at {MARIADB_ADMIN_URL} ({exc.orig})")
    try:
        yield f"mysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        engine.dispose()
