"""Schema state: initialise an empty database, upgrade on request, wait out an out-of-date one.

Migrations run only from here, called once by the supervisor before any core worker is asked to
serve, or by `trackgate db upgrade`; never lazily from several workers (the SQLite migration races
users of other tools have hit). A store constructor never migrates, and a server never migrates a
database that already has a schema: with many replicas, `trackgate db upgrade` is the one step,
and every schema change (that, or the bootstrap of an empty database) holds the schema lock.
"""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.entities import LifecycleStage
from tracking_core.importer.detect import import_command, looks_like_mlflow
from tracking_core.settings import CoreSettings, mask_uri
from tracking_core.store import tables
from tracking_core.store.database import connect_failure, create_engine, is_mysql
from tracking_core.store.schema_lock import SchemaLockTimeout, locked_transaction
from tracking_core.store.uris import join_uri

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from sqlalchemy.ext.asyncio import AsyncConnection

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"


class SchemaError(Exception):
    """The database cannot be served as it is; the message says what to do."""


class SchemaOutOfDate(SchemaError):
    """The schema is older than this trackgate's: a server waits (not ready) for `trackgate db upgrade`."""


MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*['\"]?(\w*)", re.MULTILINE)


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "tracking_core.store:migrations")
    return cfg


@functools.cache
def _revision_chain() -> tuple[str, frozenset[str]]:
    """(head, every revision) read from the migration files' `revision =` / `down_revision =` lines.

    Alembic itself costs ~0.4 s to import, and every server start checks the revision; Alembic is
    loaded only when there is something to migrate. tests/core/test_schema_revisions.py checks that
    this reading agrees with Alembic's own.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in MIGRATIONS.glob("*.py"):
        found = dict(m.groups() for m in _REVISION_LINE.finditer(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue  # the package's __init__.py
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"The migrations must form one line; heads found: {sorted(heads)}")
    return heads.pop(), frozenset(revisions)


def head_revision() -> str:
    return _revision_chain()[0]


def known_revisions() -> frozenset[str]:
    return _revision_chain()[1]


def _state(sync_conn: sa.Connection) -> tuple[str | None, set[str]]:
    """(the database's Alembic revision or None, its table names)."""
    table_names = set(sa.inspect(sync_conn).get_table_names())
    current = None
    if "alembic_version" in table_names:
        rows = sync_conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(rows) > 1:
            raise SchemaError(f"The database records several schema revisions ({', '.join(sorted(rows))}); "
                              "it was not made by trackgate.")
        current = rows[0] if rows else None
    return current, table_names


def _upgrade(sync_conn: sa.Connection) -> None:
    from alembic import command

    cfg = _alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def _ensure_default_experiment(conn: AsyncConnection, artifact_root: str) -> None:
    exists = await conn.scalar(
        sa.select(tables.experiments.c.experiment_id).where(
            tables.experiments.c.experiment_id == DEFAULT_EXPERIMENT_ID
        )
    )
    if exists is not None:
        return
    if conn.dialect.name in ("mysql", "mariadb"):
        # Otherwise MySQL treats an explicit 0 in an AUTO_INCREMENT column as "next value".
        await conn.execute(sa.text("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"))
    now = int(time.time() * 1000)
    await conn.execute(
        tables.experiments.insert().values(
            experiment_id=DEFAULT_EXPERIMENT_ID,
            name=DEFAULT_EXPERIMENT_NAME,
            artifact_location=join_uri(artifact_root, str(DEFAULT_EXPERIMENT_ID)),
            lifecycle_stage=LifecycleStage.ACTIVE.value,
            creation_time=now,
            last_update_time=now,
        )
    )


async def _run(uri: str, config: CoreSettings, action: Any) -> Any:
    """`action(conn)` in one transaction holding the schema lock; SchemaError saying why when the
    database cannot be opened."""
    try:
        engine = create_engine(config, uri)
    except ValueError as exc:  # mysql_tls.MySQLTLSError: a TLS file that cannot be used
        if not is_mysql(uri):
            raise
        raise SchemaError(f"Cannot open the database {mask_uri(uri)}: {exc}") from None
    try:
        # The engine's AsyncConnection, never the inline SQLite one that every `conn.` call is checked against.
        try:
            connection = await engine.connect()
        except sa.exc.OperationalError as exc:
            reason = connect_failure(exc.orig, config, uri)
            raise SchemaError(mask_uri(f"Cannot open the database {mask_uri(uri)}: {reason}")) from None
        try:
            async with locked_transaction(connection):
                return await action(connection)
        except SchemaLockTimeout as exc:
            raise SchemaError(f"Cannot change the schema of {mask_uri(uri)}: {exc}.") from None
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _refuse_mlflow(uri: str, table_names: set[str]) -> None:
    """MLflow's own database cannot be served or upgraded (its history is not ours): say so, and
    give the command that imports it instead."""
    if looks_like_mlflow(table_names):
        raise SchemaError(
            f"The database {mask_uri(uri)} is an MLflow tracking database. trackgate does not serve or upgrade "
            f"MLflow's schema; import it into a new trackgate database instead:\n  "
            + import_command(mask_uri(uri), "sqlite:///trackgate.db")
        )


async def prepare(config: CoreSettings, uri: str | None = None) -> None:
    """Make a database servable: initialise it if empty, else check it is current.

    `uri` defaults to the tracking database; `prepare_all` also passes the registry's.
    """
    uri = uri or config.backend_store_uri
    option = "--backend-store-uri" if uri == config.backend_store_uri else "--registry-store-uri"
    head = head_revision()

    async def action(conn: AsyncConnection) -> None:
        current, table_names = await conn.run_sync(_state)
        _refuse_mlflow(uri, table_names)
        if current is None and "experiments" in table_names:
            raise SchemaError(
                f"The database {mask_uri(uri)} holds tables that trackgate did not create (an MLflow "
                f"database?). Point {option} at a new database."
            )
        if current is None:
            await conn.run_sync(_upgrade)  # an empty database: nobody's data to migrate
        elif current not in known_revisions():
            raise SchemaError(
                f"The database schema (revision {current}) is newer than this trackgate knows (it needs "
                f"{head}): a newer release upgraded it. Run that release."
            )
        elif current != head:
            raise SchemaOutOfDate(
                f"The database schema is out of date (revision {current}, this trackgate needs {head}). "
                f"Back it up, then run: trackgate db upgrade {mask_uri(uri)}"
            )
        await _ensure_default_experiment(conn, config.effective_default_artifact_root)

    await _run(uri, config, action)


async def prepare_all(config: CoreSettings) -> None:
    """Prepare the tracking database and, when --registry-store-uri names another, the registry's.

    The registry database gets the whole schema (one Alembic history for both); only its
    registry tables are used.
    """
    await prepare(config)
    if config.effective_registry_store_uri != config.backend_store_uri:
        await prepare(config, config.effective_registry_store_uri)


async def upgrade(config: CoreSettings, uri: str) -> tuple[str | None, str]:
    """`trackgate db upgrade`: migrate to head; returns (revision before, revision after)."""

    async def action(conn: AsyncConnection) -> tuple[str | None, str]:
        before, table_names = await conn.run_sync(_state)
        _refuse_mlflow(uri, table_names)
        await conn.run_sync(_upgrade)
        await _ensure_default_experiment(conn, config.effective_default_artifact_root)
        return before, head_revision()

    return await _run(uri, config, action)
