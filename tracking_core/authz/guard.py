"""The one check: before every endpoint (by its rule) and every other route (by its path rule),
plus what must follow a successful create, rename or delete, and the audit record of each request.

Installed only when the gateway authenticates (`CoreSettings.authorization`); an open server runs
none of this, as `mlflow server` without its auth app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from tracking_core.api import experiments, registered_models, runs
from tracking_core.api.routing import Endpoint, endpoint_of
from tracking_core.authz.audit import AuditSink, action, audited, outcome, status_of
from tracking_core.authz.caller import Caller, CallerCache
from tracking_core.authz.locate import Locator
from tracking_core.authz.paths import PATH_RULES, Check
from tracking_core.authz.permissions import EXPERIMENT, REGISTERED_MODEL, Permission
from tracking_core.authz.routes import RULES, Found, Kind, Rule
from tracking_core.authz.state import AUTHZ, CALLER, DETAIL, RESOURCE, Authz, current, denied, require, require_admin
from tracking_core.identity import identify
from tracking_core.keys import CONFIG, IDENTITY, STORES
from tracking_core.store import grants as grant_store
from tracking_core.store import tables

USER_TAG = runs.USER_TAG


class Route(NamedTuple):
    """What authorization does for one route, worked out once at start-up, not per request."""

    action: str  # the audit record's action: `POST /api/2.0/mlflow/runs/log-metric`
    audited: bool  # state-changing or a download: one audit record per request
    check: Check | None  # the path rule of a non-Endpoint route (paths.PATH_RULES)
    detailed: bool  # its handler may name the change for the audit record (DETAIL): the auth API


def _route(method: str, where: str, handler: Any) -> Route:
    endpoint = endpoint_of(handler)
    rule = RULES.get(endpoint.handler) if endpoint is not None else None
    detailed = endpoint is None or rule is None or rule.kind is Kind.OWN
    return Route(action(method, where), audited(method, where), PATH_RULES.get(handler), detailed)


def route_table(app: web.Application) -> dict[web.AbstractRoute, Route]:
    return {
        route: _route(route.method, route.resource.canonical, route.handler)
        for route in app.router.routes()
        if route.resource is not None and route.method != hdrs.METH_ANY
    }


async def authz_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs after the stores' context: it uses their database."""
    config, db = app[CONFIG], app[STORES].db
    sink = AuditSink(db, config.audit_retention_days)
    app[AUTHZ] = Authz(config, db, CallerCache(db, config), Locator(db), sink, route_table(app))
    async with sink.running():
        yield


def _user_tag_touched(caller: Caller, a: dict[str, Any]) -> list[Any]:
    """The values a non-admin's request writes to the `mlflow.user` tag (none: nothing to check)."""
    if caller.is_admin:
        return []
    if "tags" in a:
        return [t.get("value") for t in a["tags"] or () if t.get("key") == USER_TAG]
    if a.get("key") == USER_TAG:
        return [a.get("value")]
    return []


async def _user_tag_kept(request: web.Request, caller: Caller, a: dict[str, Any], touched: list[Any]) -> None:
    """`mlflow.user` says who created the run; only that user may write it, and only unchanged."""
    async with request.app[AUTHZ].db.read() as conn:
        owner = await conn.scalar(sa.select(tables.runs.c.user_id).where(tables.runs.c.run_id == str(a["run_id"])))
    if caller.subject != owner or any(value != owner for value in touched):
        raise denied(f"Permission denied: the '{USER_TAG}' tag of a run records who created it and cannot be changed.")


async def _after(request: web.Request, caller: Caller, handler: Any, a: dict[str, Any], out: dict[str, Any]) -> None:
    """Creators get MANAGE; grants follow a registered model through a rename and go with it."""
    az = request.app[AUTHZ]
    changed = True
    async with az.db.write() as conn:
        if handler is experiments.create and caller.subject:
            await grant_store.grant(conn, caller.subject, EXPERIMENT, str(out["experiment_id"]), "MANAGE", True)
        elif handler is registered_models.create and caller.subject:
            await grant_store.grant(conn, caller.subject, REGISTERED_MODEL, a["name"], "MANAGE", True)
        elif handler is registered_models.rename:
            await grant_store.rename_resource(conn, REGISTERED_MODEL, a["name"], a["new_name"])
        elif handler is registered_models.delete:
            await grant_store.forget_resource(conn, REGISTERED_MODEL, a["name"])
        else:
            changed = False
    if changed:
        az.callers.clear()


_AFTER = frozenset({experiments.create, registered_models.create, registered_models.rename, registered_models.delete})


def _require_all(request: web.Request, caller: Caller, found: Iterable[Found], need: Permission) -> Found:
    """Raise unless `need` is held on every resource found; the first one, which names the request
    in its audit record."""
    first: Found = None
    for resource in found:
        if resource is None:
            continue  # an unknown experiment name: the handler answers RESOURCE_DOES_NOT_EXIST
        if first is None:
            request[RESOURCE] = first = resource
        require(caller, resource, need)
    return first


def _asked(rule: Rule, a: dict[str, Any]) -> tuple[str, str] | None:
    """The key of this check in the caller's memory of passed checks (None: not remembered)."""
    value = a.get(rule.key) if rule.key is not None else None
    return (rule.asked, value) if value and value.__class__ is str else None


async def _check(request: web.Request, caller: Caller, rule: Rule | None, a: dict[str, Any]) -> None:
    if rule is None:
        require_admin(caller)  # an endpoint nobody classified: admins only, never open by omission
        return
    if rule.kind is not Kind.RESOURCE:
        if rule.kind is Kind.CREATE and caller.subject is None:
            raise denied("Permission denied: an unauthenticated caller cannot create.")
        return
    locator = request.app[AUTHZ].locator
    asked = _asked(rule, a)
    if asked is not None and (passed := caller.passed.get(asked)) is not None:
        request[RESOURCE] = passed
    else:
        found = rule.quick(locator, a) if rule.quick is not None else None
        if found is None and rule.find is not None:
            found = await rule.find(locator, a)
        first = _require_all(request, caller, found or (), rule.need)
        # Remembered only an existing resource that allowed it (a refusal raised above; a run
        # that does not exist yet is asked again next time).
        if asked is not None and first is not None and first.__class__ is tuple:
            caller.remember(asked, first)
    if rule.reads is not None:
        for resource in await rule.reads(locator, a):
            if resource is not None:
                require(caller, resource, Permission.READ)
    if rule.user_tag and (touched := _user_tag_touched(caller, a)):
        await _user_tag_kept(request, caller, a, touched)


async def guard(request: web.Request, endpoint: Endpoint, a: dict[str, Any]) -> dict[str, Any]:
    """Called by the routing adapter instead of `endpoint.handler` when authorization is on."""
    caller = request.get(CALLER) or await current(request)
    assert caller is not None  # guard is installed only with AUTHZ
    rule = RULES.get(endpoint.handler)
    # The hot path (log-metric, log-batch and their like): this caller passed the same check on
    # the same resource before (its cached grants decided; a run never changes experiment), and
    # nothing else needs asking: one dict lookup, no coroutine.
    if (
        rule is not None and rule.simple and (asked := _asked(rule, a)) is not None
        and (passed := caller.passed.get(asked)) is not None
        and not (rule.user_tag and _user_tag_touched(caller, a))
    ):
        request[RESOURCE] = passed
    else:
        await _check(request, caller, rule, a)
    out = await endpoint.handler(request, a)
    if endpoint.handler in _AFTER:
        await _after(request, caller, endpoint.handler, a, out)
    return out


def _record(request: web.Request, az: Authz, caller: Caller, route: Route, status: int) -> None:
    rtype, rid = request.get(RESOURCE) or (None, None)
    # The gateway's X-Forwarded-For (it replaces any the client sent); the core's own peer is the
    # gateway's socket.
    client = request.headers.get("X-Forwarded-For") or request.remote
    az.audit.record(  # in audit.FIELDS order
        caller.subject,
        caller.method,
        client[:64] if client else None,
        route.action,
        rtype,
        rid if rid is None or (rid.__class__ is str and len(rid) <= 256) else str(rid)[:256],
        "allowed" if status < 400 else outcome(status),
        status,
        request.get(DETAIL) if route.detailed else None,
    )


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The identity middleware's work, the path rules of the non-Endpoint routes and the audit
    record, in one layer: installed in place of `identity.identity` when authorization is on."""
    az = request.app.get(AUTHZ)
    if az is None:  # not started (no request reaches a server before its start-up)
        identify(request)
        return await handler(request)
    # The caller, when the cache has it (the guard loads it otherwise, only if the route needs
    # it); the cache is keyed by the identity headers as sent, so a hit parses nothing.
    caller = az.callers.cached(request.headers)
    if caller is None:
        identify(request)
    else:
        request[CALLER] = caller
        if caller.identity is not None:
            request[IDENTITY] = caller.identity
    route = az.routes.get(request.match_info.route)
    if route is None:  # no route matched (404, 405) or a catch-all one
        resource = request.match_info.route.resource
        route = _route(request.method, resource.canonical if resource is not None else request.path, None)
    if not route.audited:
        if route.check is not None:
            await route.check(request, caller or await _caller(request))
        return await handler(request)
    try:
        if route.check is not None:
            await route.check(request, caller or await _caller(request))
        response = await handler(request)
    except BaseException as exc:
        _record(request, az, request.get(CALLER) or await _caller(request), route, status_of(exc))
        raise
    _record(request, az, request.get(CALLER) or await _caller(request), route, response.status)
    return response


async def _caller(request: web.Request) -> Caller:
    found = await current(request)
    assert found is not None  # only with authorization on
    return found
