"""How to find the resource a request is about: the experiment of a run or a logged model, a
registered model by name. Runs and logged models never move between experiments, so the answer
is remembered per worker (a bounded map): the hot log_metric path asks the database once per run.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

import sqlalchemy as sa

from tracking_core.authz.permissions import EXPERIMENT, REGISTERED_MODEL
from tracking_core.store.database import Database
from tracking_core.store.tables import experiments, logged_models, runs

Resource = tuple[str, str]  # (resource type, id): ("experiment", "3"), ("registered_model", "name")


class Missing(NamedTuple):
    """A run or logged model that does not exist: its experiment, and so its permission, is
    unknown. Only admins pass (and get RESOURCE_DOES_NOT_EXIST); everyone else is refused, as
    MLflow's auth app refuses them, so a 403 never tells whether an id exists."""

    kind: str  # "run", "logged_model"
    key: str

MAX_REMEMBERED = 100_000

_RUN = sa.select(runs.c.experiment_id).where(runs.c.run_id == sa.bindparam("id"))
_MODEL = sa.select(logged_models.c.experiment_id).where(logged_models.c.model_id == sa.bindparam("id"))
_BY_NAME = sa.select(experiments.c.experiment_id).where(experiments.c.name == sa.bindparam("id"))


class Locator:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: OrderedDict[tuple[str, str], str] = OrderedDict()

    def known(self, kind: str, key: str) -> Resource | None:
        """The remembered answer, without a coroutine (the hot path: every log_metric asks)."""
        hit = self._known.get((kind, key))
        return None if hit is None else (EXPERIMENT, hit)

    async def _experiment_of(self, kind: str, stmt: sa.Select[Any], key: str) -> Resource | Missing:
        hit = self._known.get((kind, key))
        if hit is None:
            async with self._db.read() as conn:
                found = await conn.scalar(stmt, {"id": key})
            if found is None:
                return Missing("logged_model" if kind == "model" else kind, key)
            hit = str(found)
            self._known[(kind, key)] = hit
            if len(self._known) > MAX_REMEMBERED:
                self._known.popitem(last=False)
        return EXPERIMENT, hit

    async def run(self, run_id: str) -> Resource | Missing:
        return await self._experiment_of("run", _RUN, run_id)

    async def logged_model(self, model_id: str) -> Resource | Missing:
        return await self._experiment_of("model", _MODEL, model_id)

    async def experiment_named(self, name: str) -> Resource | None:
        """None for an unknown name: the handler answers RESOURCE_DOES_NOT_EXIST (so does MLflow)."""
        async with self._db.read() as conn:  # names change (rename), so never remembered
            found = await conn.scalar(_BY_NAME, {"id": name})
        return None if found is None else (EXPERIMENT, str(found))


def experiment(experiment_id: Any) -> Resource:
    return EXPERIMENT, str(experiment_id)


def registered_model(name: str) -> Resource:
    return REGISTERED_MODEL, name
