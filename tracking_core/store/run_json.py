"""Run messages for SQLite with their info, params and tags rendered as JSON by SQLite itself.

A search page holds hundreds of runs with a dozen child rows each; building a Python tuple, a
dict and then JSON text for every one of those rows cost more than the queries. Here SQLite
returns one row per run, its info object and its params and tags arrays already as JSON text,
which travel to the response as `orjson.Fragment`s, untouched.

Metrics stay in Python: SQLite prints doubles with 15 significant digits, so a value such as
0.30000000000000004 would not survive the round trip, and NaN/Infinity need MLflow's spelling.
The portable path (`runs.load_runs` on other backends) returns the same messages; the store
contract suite and tests/core/test_run_json.py hold both to that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from tracking_core.store.rows import plain_rows
from tracking_core.store.run_render import render_metric
from tracking_core.store.sqlite_json import member_if_set, open_object, ordered_list

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

# (JSON field, SQL expression over `runs` aliased r), in the order render_info writes them.
_INFO_FIELDS = (
    ("run_id", "r.run_id"),
    ("run_uuid", "r.run_id"),
    ("run_name", "r.name"),
    ("experiment_id", "CAST(r.experiment_id AS TEXT)"),
    ("user_id", "r.user_id"),
    ("status", "r.status"),
    ("start_time", "r.start_time"),
    ("artifact_uri", "r.artifact_uri"),
    ("lifecycle_stage", "r.lifecycle_stage"),
)


def _key_values(table: str) -> str:
    # The primary key delivers (run_id, key) order, so keeping the list in key order costs no sort.
    return ordered_list(
        "json_object('key', \"key\", 'value', value)", f'FROM {table} WHERE run_id = r.run_id ORDER BY "key"'
    )


# MLflow leaves end_time out while a run has none.
_INFO = f"{open_object(*_INFO_FIELDS)} || {member_if_set('end_time', 'r.end_time')} || '}}'"
# `ids` is a JSON array of run ids; json_each's `key` is the position, which orders the page.
_RUNS = sa.text(
    f"SELECT r.run_id, {_INFO}, {_key_values('params')}, {_key_values('run_tags')} "
    "FROM json_each(:ids) AS page JOIN runs AS r ON r.run_id = page.value ORDER BY page.key"
)
_LATEST = sa.text(
    'SELECT m.run_id, m."key", m.step, m.timestamp, m.value, m.is_nan, m.model_id, m.dataset_name, '
    "m.dataset_digest FROM json_each(:ids) AS page JOIN latest_metrics AS m ON m.run_id = page.value "
    'ORDER BY m.run_id, m."key"'
)


async def load_run_parts(conn: AsyncConnection, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(run_id, {"info", "data"}) for the runs of `ids` that exist, in that order."""
    bound = {"ids": orjson.dumps(list(ids)).decode()}
    metrics: dict[str, list[dict[str, Any]]] = {}
    for run_id, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest in await plain_rows(
        conn, _LATEST, bound
    ):
        metric = render_metric(key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest)
        metrics.setdefault(run_id, []).append(metric)
    parts = []
    for run_id, info, params, tags in await plain_rows(conn, _RUNS, bound):
        data: dict[str, Any] = {}
        if run_id in metrics:
            data["metrics"] = metrics[run_id]
        if params is not None:  # MLflow leaves empty lists out
            data["params"] = orjson.Fragment(params)
        if tags is not None:
            data["tags"] = orjson.Fragment(tags)
        parts.append((run_id, {"info": orjson.Fragment(info), "data": data}))
    return parts
