"""PostgreSQL: the hottest writes in as few statements (network round trips) as they can be.

Logging metric points is one statement. `log_metric` (and a `log_batch` of metrics alone) needs
the run's state, the points, the model copies and the latest value per key. Sent as separate
statements inside BEGIN/COMMIT that is five round trips, each a network hop to Cloud SQL. Here
one statement with data-modifying CTEs reads the run and writes all three tables only if the run
is active, atomically on its own (no BEGIN/COMMIT), and returns the run's state so the caller can
tell "not found" and "not active" apart from success. The points travel as one array per column
(`unnest`), whatever their number.

Creating a run is two: the experiment's artifact location is read first (the run's artifact URI is
built from it in Python), then one statement inserts the run and its tags only if the experiment
is still active.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = ("key", "step", "timestamp", "value", "is_nan", "model_id", "dataset_name", "dataset_digest")
_TYPES = ("text", "bigint", "bigint", "float8", "boolean", "text", "text", "text")


def _unnest(prefix: str) -> str:
    arrays = ", ".join(f"CAST(:{prefix}_{c} AS {t}[])" for c, t in zip(_COLUMNS, _TYPES, strict=True))
    return f"SELECT * FROM unnest({arrays}) AS t({', '.join(_COLUMNS)})"


_LATEST_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])
LOG_METRICS = sa.text(f"""
WITH run AS (SELECT experiment_id, lifecycle_stage FROM runs WHERE run_id = :run_id),
live AS (SELECT experiment_id FROM run WHERE lifecycle_stage = 'active'),
points AS ({_unnest("p")}),
newest AS ({_unnest("n")}),
m AS (
    INSERT INTO metrics (run_id, {", ".join(_COLUMNS)})
    SELECT :run_id, points.* FROM points, live
    ON CONFLICT DO NOTHING
),
lm AS (
    INSERT INTO logged_model_metrics
        (model_id, key, timestamp, step, run_id, value, is_nan, experiment_id, dataset_name, dataset_digest)
    SELECT p.model_id, p.key, p.timestamp, p.step, :run_id, p.value, p.is_nan, live.experiment_id,
           p.dataset_name, p.dataset_digest
    FROM points p, live WHERE p.model_id IS NOT NULL
    ON CONFLICT DO NOTHING
),
l AS (
    INSERT INTO latest_metrics (run_id, {", ".join(_COLUMNS)})
    SELECT :run_id, newest.* FROM newest, live
    ON CONFLICT (run_id, key) DO UPDATE SET {_LATEST_SET}
    WHERE (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
        < (EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value)
)
SELECT experiment_id, lifecycle_stage FROM run
""")


CREATE_RUN = sa.text("""
WITH live AS (
    SELECT experiment_id FROM experiments
    WHERE experiment_id = CAST(:experiment_id AS bigint) AND lifecycle_stage = 'active'
),
r AS (
    INSERT INTO runs (run_id, experiment_id, name, user_id, status, start_time, end_time, deleted_time,
                      lifecycle_stage, artifact_uri)
    SELECT CAST(:run_id AS text), live.experiment_id, CAST(:name AS text), CAST(:user_id AS text),
           CAST(:status AS text), CAST(:start_time AS bigint), NULL, NULL, CAST(:lifecycle_stage AS text),
           CAST(:artifact_uri AS text)
    FROM live
    RETURNING run_id
),
t AS (
    INSERT INTO run_tags (run_id, key, value)
    SELECT r.run_id, t.key, t.value
    FROM r, unnest(CAST(:tag_keys AS text[]), CAST(:tag_values AS text[])) AS t(key, value)
)
SELECT count(*) FROM r
""")
EXPERIMENT_STATE = sa.text(
    "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = :experiment_id"
)


def _positional(statement: sa.TextClause) -> tuple[str, list[str]]:
    """The statement with asyncpg's $n placeholders, and the parameter names in their order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"(?<!:):(\w+)", number, statement.text), names


_LOG_METRICS_SQL, _LOG_METRICS_NAMES = _positional(LOG_METRICS)
# What a lost connection looks like from asyncpg; anything else is a database answer.
_DISCONNECTS = (OSError, ConnectionError)


async def log_metrics(conn: AsyncConnection, bound: dict[str, Any]) -> Any:
    """LOG_METRICS on the asyncpg connection itself: SQLAlchemy's async adapter (a greenlet hop,
    the compiled-statement lookup, result wrapping) costs several times the statement here.
    Errors come out as SQLAlchemy's types, a lost connection invalidated, as if it had run them."""
    import asyncpg  # lazy: only PostgreSQL servers load it

    raw = await conn.get_raw_connection()
    try:
        return await raw.driver_connection.fetchrow(_LOG_METRICS_SQL, *(bound[n] for n in _LOG_METRICS_NAMES))
    except (*_DISCONNECTS, asyncpg.InterfaceError) as exc:
        lost = isinstance(exc, (*_DISCONNECTS, asyncpg.ConnectionDoesNotExistError))
        lost = lost or raw.driver_connection.is_closed()
        if lost:
            raw.invalidate(exc)
        raise sa.exc.OperationalError(_LOG_METRICS_SQL, None, exc, connection_invalidated=lost) from exc
    except asyncpg.PostgresError as exc:
        raise sa.exc.DBAPIError(_LOG_METRICS_SQL, None, exc) from exc


def parameters(run_id: str, rows: Sequence[dict[str, Any]], newest: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The statement's parameters: each column of the points and of the newest point per key as an array."""
    bound: dict[str, Any] = {"run_id": run_id}
    for prefix, source in (("p", rows), ("n", newest)):
        for column in _COLUMNS:
            bound[f"{prefix}_{column}"] = [r[column] for r in source]
    return bound
