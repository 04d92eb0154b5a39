"""A real SQLite database built from our schema, configured like the server's engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tracking_core.store import tables


def sqlite_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")

    # The server does the same: MLflow's LIKE is case-sensitive, SQLite's is not by default.
    @sa.event.listens_for(engine, "connect")
    def _case_sensitive_like(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA case_sensitive_like=ON")

    tables.metadata.create_all(engine)
    return engine


def fetch(engine: sa.Engine, stmt: sa.Select[Any]) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.scalars(stmt))
