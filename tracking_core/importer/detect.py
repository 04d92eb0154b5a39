"""Recognising an MLflow installation: its SQL database, or a `./mlruns` file store.

Used by the importer to choose a reader, and by `trackgate server` / `db upgrade` to say "this is
MLflow's database, import it" instead of advising an upgrade that cannot work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tracking_core.importer.mlflow_revisions import KNOWN_REVISIONS

if TYPE_CHECKING:  # gateway.config imports this module; SQLAlchemy only where a database is read
    import sqlalchemy as sa

# Tables every MLflow tracking schema has had, and trackgate's schema has not (MLflow names the
# run id `run_uuid` in a table called `tags`).
_MLFLOW_MARKERS = {"experiments", "runs", "tags", "metrics", "params"}


class ImportRefused(Exception):
    """The import cannot go ahead as asked; the message says why and what to do."""


def looks_like_mlflow(table_names: set[str]) -> bool:
    """True for a database MLflow created (trackgate's own run tags table is `run_tags`)."""
    return table_names >= _MLFLOW_MARKERS and "run_tags" not in table_names


def mlflow_revision(sync_conn: sa.Connection) -> str:
    """The MLflow schema revision of an MLflow database; ImportRefused if it is not one we know."""
    import sqlalchemy as sa

    names = set(sa.inspect(sync_conn).get_table_names())
    if not looks_like_mlflow(names):
        raise ImportRefused("The source database holds no MLflow tracking tables (experiments, runs, metrics...).")
    if "alembic_version" not in names:
        raise ImportRefused(
            "The source database has MLflow's tables but no alembic_version: it was never fully created by "
            "MLflow. Run `mlflow db upgrade <uri>` with the MLflow version that wrote it, then import again."
        )
    revision = sync_conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    if revision not in KNOWN_REVISIONS:
        raise ImportRefused(
            f"The source database is at MLflow schema revision {revision!r}, which this trackgate does not know "
            "(it reads MLflow 1.x, 2.x and 3.x up to 3.17). Upgrade trackgate, or import from a copy migrated "
            "with an MLflow release whose schema it knows."
        )
    return str(revision)


def is_mlruns(path: str | os.PathLike[str]) -> bool:
    """A directory laid out as MLflow's file store: experiment folders holding `meta.yaml`."""
    root = Path(path)
    if not root.is_dir():
        return False
    return any((child / "meta.yaml").is_file() for child in root.iterdir() if child.name.isdigit())


def mlflow_file_store(uri: str) -> str | None:
    """The folder a `--backend-store-uri` names when it is MLflow's file store (`./mlruns`,
    `file:./mlruns`, `file:///abs/mlruns`), else None."""
    path = uri[len("file:") :] if uri.startswith("file:") else uri
    if path.startswith("//"):
        path = path[2:]
    if "://" in path or not is_mlruns(path):
        return None
    return path


def import_command(source: str, target: str) -> str:
    return f"trackgate import-mlflow --from {source} --to {target}"
