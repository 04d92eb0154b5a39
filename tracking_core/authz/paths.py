"""The check for routes outside the Endpoint table: the UI's downloads and the artifact proxy.

The proxy (`mlflow-artifacts`) only sees a path. Under the default root a run's artifacts live at
`<experiment_id>/<run_id>/artifacts/...` and a logged model's at `<experiment_id>/models/...`,
so the first segment names the experiment, as MLflow's auth app reads it too. A path that does
not start with an experiment id (a custom layout, the root listing) is for admins only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tracking_core.api import artifacts, run_artifacts, ui_helpers
from tracking_core.authz import locate
from tracking_core.authz.caller import Caller
from tracking_core.authz.locate import Missing, Resource
from tracking_core.authz.permissions import Permission
from tracking_core.authz.state import AUTHZ, RESOURCE, require, require_admin

Check = Callable[[web.Request, Caller], Awaitable[None]]


async def _checked(request: web.Request, caller: Caller, resource: Resource | Missing, need: Permission) -> None:
    request[RESOURCE] = resource
    require(caller, resource, need)


def _proxy(need: Permission, from_query: bool = False) -> Check:
    async def check(request: web.Request, caller: Caller) -> None:
        raw = request.query.get("path", "") if from_query else request.match_info.get("path", "")
        first = raw.lstrip("/").split("/", 1)[0]
        if not first.isdigit():
            require_admin(caller)
            return
        await _checked(request, caller, locate.experiment(first), need)

    return check


async def _run_file(request: web.Request, caller: Caller) -> None:
    run_id = request.query.get("run_id") or request.query.get("run_uuid")
    if run_id:
        await _checked(request, caller, await request.app[AUTHZ].locator.run(run_id), Permission.READ)


async def _run_upload(request: web.Request, caller: Caller) -> None:
    if run_id := request.query.get("run_uuid"):
        await _checked(request, caller, await request.app[AUTHZ].locator.run(run_id), Permission.EDIT)


async def _version_file(request: web.Request, caller: Caller) -> None:
    if name := request.query.get("name"):
        await _checked(request, caller, locate.registered_model(name), Permission.READ)


PATH_RULES: dict[Callable[..., object], Check] = {
    run_artifacts.get_artifact: _run_file,
    run_artifacts.get_model_version_artifact: _version_file,
    ui_helpers.upload_artifact: _run_upload,
    artifacts.download: _proxy(Permission.READ),
    artifacts.presigned: _proxy(Permission.READ),
    artifacts.list_artifacts: _proxy(Permission.READ, from_query=True),
    artifacts.upload: _proxy(Permission.EDIT),
    artifacts.mpu_create: _proxy(Permission.EDIT),
    artifacts.mpu_complete: _proxy(Permission.EDIT),
    artifacts.mpu_abort: _proxy(Permission.EDIT),
    artifacts.delete: _proxy(Permission.MANAGE),
}
