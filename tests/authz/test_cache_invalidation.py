"""The caches that keep authorization cheap per request never outlive a permission change.

Each worker caches callers (grants, admin flag) and the checks they passed (a run's experiment and
the permission on it) for `caller.TTL` seconds. A change made through a worker clears its cache at
once; another worker (here: a second core on the same database, as `--workers 2` runs) sees it
within TTL. Every refused write must change nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.authz.conftest import ADMIN, As, core
from tracking_core.authz.caller import TTL


async def _metric_count(owner: As, run_id: str) -> int:
    got = await owner.call("GET", "metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    return len(got.get("metrics", []))


async def _setup(owner: As) -> tuple[str, str]:
    experiment = (await owner.call("POST", "experiments/create", {"name": uuid.uuid4().hex}))["experiment_id"]
    run_id = (await owner.call("POST", "runs/create", {"experiment_id": experiment}))["run"]["info"]["run_id"]
    return experiment, run_id


def _log(step: int) -> dict[str, Any]:
    return {"key": "loss", "value": 1.0, "timestamp": 1, "step": step}


async def _wait_past(moment: float) -> None:
    """Sleep until the monotonic clock is past `moment` (the documented bound, not a speed check)."""
    while (left := moment - time.monotonic()) > 0:
        await asyncio.sleep(left + 0.01)


async def test_a_revoked_grant_refuses_the_next_request_on_the_same_worker(backend_uri: str) -> None:
    async with core(backend_uri, default_permission="NO_PERMISSIONS") as client:
        owner, editor = As(client, "o-" + uuid.uuid4().hex[:6]), As(client, "e-" + uuid.uuid4().hex[:6])
        experiment, run_id = await _setup(owner)
        target = {"username": editor.headers["X-Trackgate-Subject"], "resource_type": "experiment",
                  "resource_id": experiment}
        await editor.call("POST", "runs/log-metric", {"run_id": run_id, **_log(0)}, expect=403)
        # A refusal is not remembered: the grant works at once.
        await owner.call("POST", "/api/3.0/mlflow/users/permissions/grant", {**target, "permission": "EDIT"})
        for step in (1, 2, 3):  # the second and third are answered from the caller's remembered checks
            await editor.call("POST", "runs/log-metric", {"run_id": run_id, **_log(step)})
        await owner.call("POST", "/api/3.0/mlflow/users/permissions/revoke", target)
        await editor.call("POST", "runs/log-metric", {"run_id": run_id, **_log(4)}, expect=403)
        await editor.call("POST", "runs/log-batch", {"run_id": run_id, "metrics": [_log(5)]}, expect=403)
        assert await _metric_count(owner, run_id) == 3


async def test_a_role_losing_its_grant_refuses_its_members_on_the_same_worker(backend_uri: str) -> None:
    async with core(backend_uri, default_permission="NO_PERMISSIONS") as client:
        admin, owner = As(client, ADMIN), As(client, "o-" + uuid.uuid4().hex[:6])
        group = "g-" + uuid.uuid4().hex[:6]
        member = As(client, "m-" + uuid.uuid4().hex[:6], groups=(group,))  # a member by SSO group
        experiment, run_id = await _setup(owner)
        role = (await admin.call("POST", "/api/3.0/mlflow/roles/create", {"workspace": "default", "name": group}))
        added = await admin.call("POST", "/api/3.0/mlflow/roles/permissions/add", {
            "role_id": role["role"]["id"], "resource_type": "experiment", "resource_pattern": experiment,
            "permission": "EDIT"})
        await member.call("POST", "runs/log-metric", {"run_id": run_id, **_log(0)})
        await member.call("POST", "runs/log-metric", {"run_id": run_id, **_log(1)})
        await admin.call("DELETE", "/api/3.0/mlflow/roles/permissions/remove",
                         {"role_permission_id": added["role_permission"]["id"]})
        await member.call("POST", "runs/log-metric", {"run_id": run_id, **_log(2)}, expect=403)
        assert await _metric_count(owner, run_id) == 2


async def test_another_worker_refuses_within_the_cache_lifetime(backend_uri: str) -> None:
    closed = {"default_permission": "NO_PERMISSIONS"}
    async with core(backend_uri, **closed) as one, core(backend_uri, **closed) as two:
        owner = As(one, "o-" + uuid.uuid4().hex[:6])
        editor_subject = "e-" + uuid.uuid4().hex[:6]
        experiment, run_id = await _setup(owner)
        target = {"username": editor_subject, "resource_type": "experiment", "resource_id": experiment}
        await owner.call("POST", "/api/3.0/mlflow/users/permissions/grant", {**target, "permission": "EDIT"})
        on_two = As(two, editor_subject)
        await on_two.call("POST", "runs/log-metric", {"run_id": run_id, **_log(0)})
        await on_two.call("POST", "runs/log-metric", {"run_id": run_id, **_log(1)})  # cached on worker two
        await owner.call("POST", "/api/3.0/mlflow/users/permissions/revoke", target)  # through worker one
        revoked = time.monotonic()
        await _wait_past(revoked + TTL)
        await on_two.call("POST", "runs/log-metric", {"run_id": run_id, **_log(2)}, expect=403)
        assert await _metric_count(owner, run_id) == 2
