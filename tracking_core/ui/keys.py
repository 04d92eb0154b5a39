"""The column picker's keys: every param, metric and tag key of an experiment's runs, not only of
the runs on the page.

One query per kind (DISTINCT key over the experiment's runs), read only after the experiment itself
was fetched through the API's handler and guard: permission to read an experiment is permission to
read its runs (runs carry no grants of their own), so this is no second way in. It reads every
run's keys, so the runs table does not wait for it: the picker asks `/experiments/{id}/keys` (JSON)
when opened, or the page renders the keys itself with `?keys=all` (no script needed).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web

from tracking_core.api import experiments
from tracking_core.api.routing import json_response
from tracking_core.errors import MlflowError
from tracking_core.keys import stores
from tracking_core.store import tables
from tracking_core.ui.calls import call

MAX_KEYS = 2000  # per kind: a picker, not an export
STAGES = {"active": ("active",), "deleted": ("deleted",), "all": ("active", "deleted")}
KINDS = (("params", tables.params), ("metrics", tables.latest_metrics), ("tags", tables.run_tags))
SYSTEM_TAGS = "mlflow."  # MLflow's own tags: not offered as columns


async def experiment_keys(request: web.Request, experiment_id: str, view: str = "active") -> dict[str, list[str]]:
    """{"params": [...], "metrics": [...], "tags": [...]}, sorted, for the runs of `view`."""
    experiment = (await call(request, experiments.ENDPOINTS, "experiments/get", experiment_id=experiment_id))[
        "experiment"
    ]
    runs = tables.runs
    of_experiment = sa.select(runs.c.run_id).where(
        runs.c.experiment_id == int(experiment["experiment_id"]),
        runs.c.lifecycle_stage.in_(STAGES.get(view, STAGES["active"])),
    )
    found: dict[str, list[str]] = {}
    async with stores(request).db.read() as conn:
        for kind, table in KINDS:
            stmt = sa.select(table.c.key).distinct().where(table.c.run_id.in_(of_experiment))
            if kind == "tags":
                stmt = stmt.where(sa.not_(table.c.key.startswith(SYSTEM_TAGS, autoescape=True)))
            found[kind] = list((await conn.execute(stmt.order_by(table.c.key).limit(MAX_KEYS))).scalars())
    return found


async def keys_json(request: web.Request) -> web.StreamResponse:
    """`GET /experiments/{id}/keys?view=active`: the picker's keys as JSON (errors in MLflow's shape)."""
    try:
        found: dict[str, Any] = await experiment_keys(
            request, request.match_info["experiment_id"], request.query.get("view", "active")
        )
    except MlflowError as exc:
        return json_response(exc.to_json(), exc.status)
    response = json_response(found)
    response.headers["Cache-Control"] = "no-store"
    return response


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/experiments/{experiment_id}/keys", keys_json)
