"""The one table that says what every endpoint needs: which resource, how to find it, which level.

Keyed by the endpoint's handler function, so a route and its /ajax-api mirror share one rule. A
handler missing from the table is refused to everyone but admins (tests/authz checks that every
mounted endpoint has a rule, so a new endpoint cannot slip through unclassified).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tracking_core.api import (
    auth_audit,
    auth_grants,
    auth_roles,
    auth_users,
    experiments,
    logged_models,
    model_versions,
    registered_models,
    run_artifacts,
    runs,
    ui_helpers,
)
from tracking_core.authz import locate
from tracking_core.authz.locate import Locator, Missing, Resource
from tracking_core.authz.permissions import Permission

# None: nothing to check here (the handler answers RESOURCE_DOES_NOT_EXIST); Missing: see locate.
Found = Resource | Missing | None
Find = Callable[[Locator, dict[str, Any]], Awaitable[list[Found]]]
# The same answer without a coroutine when it needs no database (an id in the request, a run whose
# experiment the locator remembers); None: ask `find`.
Quick = Callable[[Locator, dict[str, Any]], list[Found] | None]


class Kind(Enum):
    RESOURCE = "resource"  # needs `need` on every resource `find` names
    CREATE = "create"  # any authenticated caller may create; the creator gets MANAGE
    SEARCH = "search"  # anyone; the results are filtered in SQL (authz.visibility)
    OWN = "own"  # the auth API: the handler checks admin / self / MANAGE itself


@dataclass(frozen=True)
class Rule:
    kind: Kind
    need: Permission = Permission.READ
    find: Find | None = None
    # Writes of the mlflow.user tag are refused unless they keep the run's recorded user.
    user_tag: bool = False
    # Resources the request also reads from (a new model version's source): READ is needed on each.
    reads: Find | None = None
    quick: Quick | None = None
    # One resource named by `key` and nothing read besides: a check the caller passed before is
    # answered from its memory, without a coroutine (authz.guard).
    simple: bool = False
    # The one request field naming the resource (run_id, experiment_id, name), when there is one:
    # each caller remembers the checks it passed per value of it (authz.guard), under `asked`.
    key: str | None = None
    asked: str = ""


def _experiment_arg_now(_: Locator, a: dict[str, Any]) -> list[Found]:
    return [locate.experiment(a["experiment_id"])] if a.get("experiment_id") not in (None, "") else []


async def _experiment_arg(loc: Locator, a: dict[str, Any]) -> list[Found]:
    return _experiment_arg_now(loc, a)


async def _experiment_name(loc: Locator, a: dict[str, Any]) -> list[Found]:
    return [await loc.experiment_named(a["experiment_name"] or "")]


def _run_now(loc: Locator, a: dict[str, Any]) -> list[Found] | None:
    run_id = a.get("run_id")
    if not run_id:
        return []
    known = loc.known("run", run_id)
    return None if known is None else [known]


async def _run(loc: Locator, a: dict[str, Any]) -> list[Found]:
    run_id = a.get("run_id")
    return [await loc.run(run_id)] if run_id else []


async def _runs(loc: Locator, a: dict[str, Any]) -> list[Found]:
    return [await loc.run(r) for r in a.get("run_ids") or () if r]


async def _runs_repeated(loc: Locator, a: dict[str, Any]) -> list[Found]:
    return [await loc.run(r) for r in a.get("run_id") or () if r]


def _experiments_now(_: Locator, a: dict[str, Any]) -> list[Found]:
    return [locate.experiment(e) for e in a.get("experiment_ids") or ()]


async def _experiments(loc: Locator, a: dict[str, Any]) -> list[Found]:
    return _experiments_now(loc, a)


async def _logged_model(loc: Locator, a: dict[str, Any]) -> list[Found]:
    return [await loc.logged_model(a["model_id"])] if a.get("model_id") else []


def _model_now(_: Locator, a: dict[str, Any]) -> list[Found]:
    return [locate.registered_model(a["name"])] if a.get("name") else []


async def _model(loc: Locator, a: dict[str, Any]) -> list[Found]:
    return _model_now(loc, a)


_RUN_SOURCE = re.compile(r"^runs:/([^/]+)")
_MODEL_SOURCE = re.compile(r"^models:/([^/@]+)$")
_PROXY_SOURCE = re.compile(r"^mlflow-artifacts:/+(\d+)/")
_REGISTRY_SOURCE = re.compile(r"^models:/([^/@]+)/\d+$")


async def _version_source(loc: Locator, a: dict[str, Any]) -> list[Found]:
    """What a new model version points at must be readable by its creator: else registering a
    version would be a way to download artifacts of an experiment one may not read."""
    source = str(a.get("source") or "")
    found: list[Found] = []
    if a.get("run_id"):
        found.append(await loc.run(a["run_id"]))
    if a.get("model_id"):
        found.append(await loc.logged_model(a["model_id"]))
    if m := _RUN_SOURCE.match(source):
        found.append(await loc.run(m.group(1)))
    elif m := _MODEL_SOURCE.match(source):
        found.append(await loc.logged_model(m.group(1)))
    elif m := _REGISTRY_SOURCE.match(source):
        found.append(locate.registered_model(m.group(1)))
    elif m := _PROXY_SOURCE.match(source):
        found.append(locate.experiment(m.group(1)))
    return found


_QUICK: dict[Find, Quick] = {
    _experiment_arg: _experiment_arg_now, _run: _run_now, _experiments: _experiments_now, _model: _model_now,
}


_KEY = {_experiment_arg: "experiment_id", _run: "run_id", _model: "name"}


def _on(find: Find, need: Permission, **extra: Any) -> Rule:
    key = _KEY.get(find)
    simple = key is not None and extra.get("reads") is None
    return Rule(Kind.RESOURCE, need, find, quick=_QUICK.get(find), simple=simple, key=key, asked=f"{key} {need.name}",
                **extra)


R, E, M = Permission.READ, Permission.EDIT, Permission.MANAGE

RULES: dict[Callable[..., Any], Rule] = {
    # Experiments (MLflow: delete and restore need MANAGE, i.e. can_delete).
    experiments.create: Rule(Kind.CREATE),
    experiments.get: _on(_experiment_arg, R),
    experiments.get_by_name: _on(_experiment_name, R),
    experiments.search: Rule(Kind.SEARCH),
    experiments.update: _on(_experiment_arg, E),
    experiments.delete: _on(_experiment_arg, M),
    experiments.restore: _on(_experiment_arg, M),
    experiments.set_tag: _on(_experiment_arg, E),
    experiments.delete_tag: _on(_experiment_arg, E),
    # Runs follow their experiment; creating one is editing the experiment.
    runs.create: _on(_experiment_arg, E),
    runs.get: _on(_run, R),
    runs.update: _on(_run, E),
    runs.delete: _on(_run, M),
    runs.restore: _on(_run, M),
    runs.log_metric: _on(_run, E),
    runs.log_param: _on(_run, E),
    runs.set_tag: _on(_run, E, user_tag=True),
    runs.delete_tag: _on(_run, E, user_tag=True),
    runs.log_batch: _on(_run, E, user_tag=True),
    runs.log_inputs: _on(_run, E),
    runs.log_outputs: _on(_run, E),
    runs.search: Rule(Kind.SEARCH),
    runs.get_history: _on(_run, R),
    runs.get_history_bulk_interval: _on(_runs, R),
    run_artifacts.list_run_artifacts: _on(_run, R),
    # The web UI's helpers (/ajax-api only).
    ui_helpers.get_history_bulk: _on(_runs_repeated, R),
    ui_helpers.search_datasets: _on(_experiments, R),
    # Logged models follow their experiment.
    logged_models.create: _on(_experiment_arg, E),
    logged_models.get: _on(_logged_model, R),
    logged_models.finalize: _on(_logged_model, E),
    logged_models.delete: _on(_logged_model, M),
    logged_models.set_tags: _on(_logged_model, E),
    logged_models.delete_tag: _on(_logged_model, E),
    logged_models.log_params: _on(_logged_model, E),
    logged_models.search: Rule(Kind.SEARCH),
    # Registered models; versions, aliases and tags follow their model.
    registered_models.create: Rule(Kind.CREATE),
    registered_models.get: _on(_model, R),
    registered_models.rename: _on(_model, E),
    registered_models.update: _on(_model, E),
    registered_models.delete: _on(_model, M),
    registered_models.search: Rule(Kind.SEARCH),
    registered_models.get_latest_versions: _on(_model, R),
    registered_models.set_tag: _on(_model, E),
    registered_models.delete_tag: _on(_model, E),
    registered_models.set_alias: _on(_model, E),
    registered_models.delete_alias: _on(_model, E),
    registered_models.get_by_alias: _on(_model, R),
    model_versions.create: _on(_model, E, reads=_version_source),
    model_versions.get: _on(_model, R),
    model_versions.update: _on(_model, E),
    model_versions.delete: _on(_model, M),
    model_versions.search: Rule(Kind.SEARCH),
    model_versions.transition_stage: _on(_model, E),
    model_versions.set_tag: _on(_model, E),
    model_versions.delete_tag: _on(_model, E),
    model_versions.get_download_uri: _on(_model, R),
}
# MLflow's auth API and trackgate's audit search, mounted only with authorization on; their
# handlers check their callers themselves (admin, self, or the MANAGE holder of a resource).
AUTH_ENDPOINTS = (*auth_users.ENDPOINTS, *auth_grants.ENDPOINTS, *auth_roles.ENDPOINTS, *auth_audit.ENDPOINTS)
RULES.update({e.handler: Rule(Kind.OWN) for e in AUTH_ENDPOINTS})
