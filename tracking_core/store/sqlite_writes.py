"""The hot write statements of the run paths, as SQL for SQLite's driver cursor.

`log_metric`, `log_param`, `set_tag`, `log_batch`, `create_run` and `update_run` are most of a
tracking server's traffic, and each is a handful of one-row statements. Through SQLAlchemy each
statement costs about five times what SQLite spends on it, so on SQLite these few run as plain
SQL on the write connection's driver (`sqlite_inline.driver`), inside the transaction the inline
write path began. They must write exactly what the SQLAlchemy statements used on the other
backends write (tests/core runs the same contract on all three), and they are kept to the
statements whose meaning is plain from the SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

RUN_STATE = "SELECT experiment_id, lifecycle_stage FROM runs WHERE run_id = ?"
RUN_ROW = (
    "SELECT run_id, experiment_id, name, user_id, status, start_time, end_time, deleted_time, lifecycle_stage,"
    " artifact_uri FROM runs WHERE run_id = ?"
)
EXPERIMENT_STATE = "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ?"

_METRIC_COLUMNS = "run_id, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest"
INSERT_METRICS = f"INSERT INTO metrics ({_METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
INSERT_MODEL_METRICS = (
    "INSERT INTO logged_model_metrics (model_id, key, timestamp, step, run_id, value, is_nan, experiment_id,"
    " dataset_name, dataset_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
# The latest point per key in one statement: insert it, or replace the stored one when the new
# point sorts after it by (step, timestamp, value), MLflow's order for "latest".
UPSERT_LATEST = (
    f"INSERT INTO latest_metrics ({_METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp,"
    " value = excluded.value, is_nan = excluded.is_nan, model_id = excluded.model_id,"
    " dataset_name = excluded.dataset_name, dataset_digest = excluded.dataset_digest"
    " WHERE (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
    " < (excluded.step, excluded.timestamp, excluded.value)"
)
INSERT_PARAMS = "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
UPSERT_TAGS = (
    "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)
INSERT_TAGS = "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)"
RENAME_RUN = "UPDATE runs SET name = ? WHERE run_id = ?"
INSERT_RUN = (
    "INSERT INTO runs (run_id, experiment_id, name, user_id, status, start_time, end_time, deleted_time,"
    " lifecycle_stage, artifact_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_METRIC_KEYS = ("run_id", "key", "step", "timestamp", "value", "is_nan", "model_id", "dataset_name", "dataset_digest")


def one(driver: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> Any:
    return driver.execute(sql, parameters).fetchone()


def many(driver: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if len(rows) == 1:
        driver.execute(sql, rows[0])
    elif rows:
        driver.executemany(sql, rows)


def metric_tuples(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in _METRIC_KEYS) for r in rows]


def params_of(driver: sqlite3.Connection, run_id: str, keys: Sequence[str]) -> dict[str, str]:
    marks = ", ".join("?" * len(keys))
    return dict(driver.execute(f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks})",
                               (run_id, *keys)).fetchall())


def update_run(driver: sqlite3.Connection, run_id: str, values: dict[str, Any]) -> None:
    """`values`: a subset of status, end_time, name (fixed column names, never client input)."""
    columns = ", ".join(f"{c} = ?" for c in values)
    driver.execute(f"UPDATE runs SET {columns} WHERE run_id = ?", (*values.values(), run_id))
