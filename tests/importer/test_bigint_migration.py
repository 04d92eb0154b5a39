"""Revision 0007: experiment ids become 64-bit on PostgreSQL and MariaDB, keeping data and keys.

A database at 0006 with an experiment and its children is upgraded; every experiment_id column is
then 64-bit, an 18-digit experiment (what MLflow's ./mlruns makes) and its run are stored, the
foreign keys still refuse an orphan and still cascade, new experiments are still numbered by the
database, and the downgrade narrows back (refusing while an id is too big for 32 bits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from tests.services import throwaway_mariadb, throwaway_postgres

BIG = 123_456_789_012_345_678  # 18 digits, as MLflow's file store makes them
COLUMNS = ("experiments", "experiment_tags", "runs", "datasets", "logged_models", "logged_model_metrics")
RUN = "ab" * 16


@contextlib.contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/t.db"
    elif backend == "postgresql":
        with throwaway_postgres() as uri:
            yield uri.replace("postgresql://", "postgresql+psycopg2://", 1)
    else:
        with throwaway_mariadb() as uri:
            yield uri.replace("mysql://", "mysql+pymysql://", 1)


def _alembic(conn: sa.Connection, action: str, revision: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "tracking_core.store:migrations")
    cfg.attributes["connection"] = conn
    getattr(command, action)(cfg, revision)


def _insert_experiment(conn: sa.Connection, experiment_id: int, name: str) -> None:
    conn.exec_driver_sql(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
        f"last_update_time) VALUES ({experiment_id}, '{name}', 'x', 'active', 1, 1)"
    )


def _insert_run(conn: sa.Connection, run_id: str, experiment_id: int) -> None:
    conn.exec_driver_sql(
        "INSERT INTO runs (run_id, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri) "
        f"VALUES ('{run_id}', {experiment_id}, 'r', 'u', 'FINISHED', 1, 'active', 'x')"
    )


def _types(conn: sa.Connection) -> dict[str, str]:
    inspector = sa.inspect(conn)
    return {
        table: str(next(c["type"] for c in inspector.get_columns(table) if c["name"] == "experiment_id"))
        for table in COLUMNS
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_upgrade_to_0007_widens_experiment_ids(backend: str, tmp_path: Path) -> None:
    with _database(backend, tmp_path) as uri:
        engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                _alembic(conn, "upgrade", "0006")
                _insert_experiment(conn, 7, "kept")
                _insert_run(conn, RUN, 7)
                conn.exec_driver_sql("INSERT INTO experiment_tags VALUES (7, 'team', 'a')")
            with engine.begin() as conn:
                _alembic(conn, "upgrade", "head")
            with engine.connect() as conn:
                types = _types(conn)
                if backend != "sqlite":
                    assert all("BIGINT" in t.upper() for t in types.values()), types
                assert conn.exec_driver_sql("SELECT experiment_id, name FROM experiments WHERE experiment_id = 7").all()
                assert conn.exec_driver_sql(f"SELECT experiment_id FROM runs WHERE run_id = '{RUN}'").scalar() == 7
            with engine.begin() as conn:
                if backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                _insert_experiment(conn, BIG, "from-mlruns")
                _insert_run(conn, "cd" * 16, BIG)
                conn.exec_driver_sql(f"INSERT INTO experiment_tags VALUES ({BIG}, 'k', 'v')")
            with engine.connect() as conn:
                assert (
                    conn.exec_driver_sql(f"SELECT experiment_id FROM runs WHERE run_id = '{'cd' * 16}'").scalar() == BIG
                )
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # the keys still hold
                if backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                _insert_run(conn, "ef" * 16, BIG + 1)
            with engine.begin() as conn:
                if backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                conn.exec_driver_sql(f"DELETE FROM experiments WHERE experiment_id = {BIG}")
                assert conn.exec_driver_sql(f"SELECT count(*) FROM runs WHERE experiment_id = {BIG}").scalar() == 0
            if backend == "postgresql":  # the sequence was widened, and still numbers new rows
                with engine.begin() as conn:
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), {BIG})"
                    )
                    made = conn.exec_driver_sql(
                        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, "
                        "last_update_time) VALUES ('next', 'x', 'active', 1, 1) RETURNING experiment_id"
                    ).scalar()
                    assert made == BIG + 1
                    conn.exec_driver_sql("DELETE FROM experiments WHERE name = 'next'")
            if backend != "sqlite":
                with engine.begin() as conn:
                    _insert_experiment(conn, BIG, "too-big-for-0006")
                with pytest.raises(RuntimeError, match="does not fit a 32-bit id"), engine.begin() as conn:
                    _alembic(conn, "downgrade", "0006")
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"DELETE FROM experiments WHERE experiment_id = {BIG}")
                    _alembic(conn, "downgrade", "0006")
                with engine.connect() as conn:
                    assert all("BIGINT" not in t.upper() for t in _types(conn).values())
                    assert conn.exec_driver_sql(f"SELECT experiment_id FROM runs WHERE run_id = '{RUN}'").scalar() == 7
        finally:
            engine.dispose()
