"""Search never leaks: 5,000 runs in experiments with mixed grants; every page, as every caller,
holds exactly what that caller may read, pages are full until the last, and nothing repeats."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.authz.conftest import ADMIN, As, core
from tracking_core.settings import CoreSettings
from tracking_core.store.database import Database, create_engine
from tracking_core.store.tables import runs

EXPERIMENTS = 10
RUNS_PER_EXPERIMENT = 500
PAGE = 137


async def _bulk_runs(uri: str, experiment_ids: list[str]) -> dict[str, set[str]]:
    db = Database(create_engine(CoreSettings(backend_store_uri=uri)))
    by_experiment: dict[str, set[str]] = {}
    rows = []
    for e in experiment_ids:
        ids = {uuid.uuid4().hex for _ in range(RUNS_PER_EXPERIMENT)}
        by_experiment[e] = ids
        rows += [dict(run_id=r, experiment_id=int(e), name=r[:8], user_id="seed", status="FINISHED",
                      start_time=i, lifecycle_stage="active", artifact_uri=f"/tmp/{r}") for i, r in enumerate(ids)]
    async with db.write() as conn:
        await conn.execute(sa.insert(runs), rows)
    await db.close()
    return by_experiment


async def _all_pages(caller: As, experiment_ids: list[str]) -> list[list[str]]:
    pages, token = [], None
    while True:
        body = {"experiment_ids": experiment_ids, "max_results": PAGE}
        if token:
            body["page_token"] = token
        out = await caller.call("POST", "runs/search", body)
        pages.append([r["info"]["run_id"] for r in out.get("runs", [])])
        token = out.get("next_page_token")
        if not token:
            return pages


def _check(pages: list[list[str]], expected: set[str]) -> None:
    seen = [r for page in pages for r in page]
    assert len(seen) == len(set(seen)), "a run appeared twice"
    assert set(seen) == expected
    assert all(len(p) == PAGE for p in pages[:-1]), "a page came back short with a token"


@pytest.mark.parametrize("default", ["READ", "NO_PERMISSIONS"])
async def test_runs_and_experiments_searches_hold_exactly_the_readable_set(backend_uri: str, default: str) -> None:
    async with core(backend_uri, default_permission=default) as client:
        admin = As(client, ADMIN)
        prefix = uuid.uuid4().hex[:6]
        ids = [(await admin.call("POST", "experiments/create", {"name": f"{prefix}-{i}"}))["experiment_id"]
               for i in range(EXPERIMENTS)]
        runs_of = await _bulk_runs(backend_uri, ids)
        role = (await admin.call("POST", "/api/3.0/mlflow/roles/create",
                                 {"workspace": "default", "name": f"team-{prefix}"}))["role"]

        async def grant(user: str, e: str, permission: str) -> None:
            await admin.call("POST", "/api/3.0/mlflow/users/permissions/grant", {
                "username": user, "resource_type": "experiment", "resource_id": e, "permission": permission})

        async def role_grant(e: str, permission: str) -> None:
            await admin.call("POST", "/api/3.0/mlflow/roles/permissions/add", {
                "role_id": role["id"], "resource_type": "experiment", "resource_pattern": e, "permission": permission})

        await grant("alice", ids[0], "READ")
        await grant("alice", ids[1], "DENY")
        await grant("bob", ids[2], "EDIT")
        await role_grant(ids[3], "READ")
        await role_grant(ids[1], "EDIT")  # DENY for alice still wins
        await role_grant(ids[4], "DENY")

        base = set(ids) if default == "READ" else set()
        readable = {
            ADMIN: (set(ids), ()),
            "alice": (((base | {ids[0]}) - {ids[1]}), ()),
            "bob": (base | {ids[2]}, ()),
            "carol": ((base | {ids[3], ids[1]}) - {ids[4]}, (f"team-{prefix}",)),  # a member by group
            "alice+group": (((base | {ids[0], ids[3]}) - {ids[1], ids[4]}), (f"team-{prefix}",)),
        }
        for who, (experiments, groups) in readable.items():
            caller = As(client, who.split("+")[0], groups)
            expected = {r for e in experiments for r in runs_of[e]}
            _check(await _all_pages(caller, ids), expected)
            found, token = [], None
            while True:
                body = {"max_results": 3, "filter": f"name LIKE '{prefix}-%'"}
                if token:
                    body["page_token"] = token
                out = await caller.call("POST", "experiments/search", body)
                found.append([e["experiment_id"] for e in out.get("experiments", [])])
                token = out.get("next_page_token")
                if not token:
                    break
            flat = [e for page in found for e in page]
            assert set(flat) == experiments and len(flat) == len(experiments), who
            assert all(len(p) == 3 for p in found[:-1])
            # A point read agrees with search.
            for e in ids:
                expect = 200 if e in experiments else 403
                await caller.call("GET", "experiments/get", params={"experiment_id": e}, expect=expect)
