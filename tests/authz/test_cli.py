"""`trackgate grants`, `roles` and `audit` against a real SQLite file, as an operator runs them;
what they write is what the core then enforces (read back through the same store functions)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracking_core.authz.caller import CallerCache
from tracking_core.authz.permissions import EXPERIMENT, REGISTERED_MODEL, Permission
from tracking_core.contract import Identity, identity_headers
from tracking_core.settings import CoreSettings
from tracking_core.store.database import Database, create_engine

pytestmark = pytest.mark.slow  # a dozen CLI processes


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--backend-store-uri", db],
                          capture_output=True, text=True, env=env, timeout=120)


def standing(db: str, subject: str, groups: tuple[str, ...] = ()) -> tuple[Permission, Permission]:
    async def load() -> tuple[Permission, Permission]:
        config = CoreSettings(backend_store_uri=db)
        database = Database(create_engine(config))
        try:
            headers = identity_headers(Identity(subject, "basic", groups=groups))
            caller = await CallerCache(database, config).load(headers)
        finally:
            await database.close()
        return caller.permission(EXPERIMENT, "7"), caller.permission(REGISTERED_MODEL, "churn")

    return asyncio.run(load())


def test_grants_roles_and_audit_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/t.db"
    assert cli(db, "grants", "grant", "alice", "experiment", "7", "edit").returncode == 0
    listed = cli(db, "grants", "list", "--user", "alice")
    assert listed.stdout.split() == ["alice", "experiment", "7", "EDIT"]
    assert standing(db, "alice") == (Permission.EDIT, Permission.READ)

    for args in (("roles", "create", "ml-team"), ("roles", "grant", "ml-team", "registered_model", "*", "MANAGE"),
                 ("roles", "grant", "ml-team", "experiment", "7", "DENY"), ("roles", "assign", "ml-team", "bob")):
        done = cli(db, *args)
        assert done.returncode == 0, done.stderr
    assert standing(db, "bob") == (Permission.DENY, Permission.MANAGE)
    assert standing(db, "carol", ("ml-team",)) == (Permission.DENY, Permission.MANAGE)  # a member by group
    assert "members: bob" in cli(db, "roles", "list").stdout

    assert cli(db, "grants", "revoke", "alice", "experiment", "7").returncode == 0
    again = cli(db, "grants", "revoke", "alice", "experiment", "7")
    assert again.returncode == 1 and "No permission" in again.stderr
    assert standing(db, "alice") == (Permission.READ, Permission.READ)
    assert cli(db, "roles", "delete", "ml-team").returncode == 0
    assert standing(db, "bob") == (Permission.READ, Permission.READ)

    assert cli(db, "audit", "--since", "1d").stdout.strip() == "(no records)"
    assert "Removed 0 audit records" in cli(db, "audit", "--prune").stdout
    bad = cli(db, "audit", "--since", "yesterday")
    assert bad.returncode == 1 and "--since" in bad.stderr
