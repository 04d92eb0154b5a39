"""MLflow's basic-auth database (`mlflow server --app-name basic-auth`) into trackgate's users and grants.

- users keep their werkzeug password hashes (tracking_core.passwords verifies them), so everyone
  logs in with the password they had; `is_admin` is kept;
- experiment and registered-model permissions become grants of the user's principal; MLflow's
  NO_PERMISSIONS grant (an explicit "no access" that overrides the default) becomes DENY;
- roles, their permissions and users' role assignments (MLflow 3.x) are kept by name; the
  one-user roles MLflow 3.x keeps a user's own permissions in (`__user_<id>__`) become that
  user's grants again.
Permissions on things trackgate does not have (scorers, AI gateway secrets and endpoints,
workspaces) are counted as skipped in the report.

Auth databases are small (users, not metric points): read whole, written in one transaction,
after a check that no existing trackgate user of the same name has another password.
"""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tracking_core.importer.detect import ImportRefused
from tracking_core.settings import mask_uri
from tracking_core.store import tables
from tracking_core.store.database import async_url
from tracking_core.store.upsert import insert_ignore

_PERMISSIONS = {"READ", "USE", "EDIT", "MANAGE"}
_SKIPPED_TABLES = (
    "scorer_permissions",
    "gateway_secret_permissions",
    "gateway_endpoint_permissions",
    "gateway_model_definition_permissions",
    "workspace_permissions",
)
_RESOURCE_TYPES = {"experiment", "registered_model"}
_USER_ROLE = re.compile(r"__user_\d+__")


def _permission(name: str | None) -> str:
    return name if name in _PERMISSIONS else "DENY"  # NO_PERMISSIONS (or unset): explicitly nothing


async def _read(conn: AsyncConnection) -> dict[str, list[Any]]:
    names = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    if "users" not in names or "experiment_permissions" not in names:
        raise ImportRefused("The --auth-db database holds no MLflow basic-auth tables (users, experiment_permissions).")
    out: dict[str, list[Any]] = {}
    for name in (
        "users",
        "experiment_permissions",
        "registered_model_permissions",
        "roles",
        "role_permissions",
        "user_role_assignments",
        *_SKIPPED_TABLES,
    ):
        out[name] = list(await conn.execute(sa.text(f"SELECT * FROM {name}"))) if name in names else []
    return out


def _unfold_user_roles(source: dict[str, list[Any]]) -> None:
    """MLflow 3.x's per-user roles back into per-user permissions (what the user granted)."""
    owners = {a.role_id: a.user_id for a in source["user_role_assignments"]}
    personal = {r.id for r in source["roles"] if _USER_ROLE.fullmatch(r.name) and r.id in owners}
    for row in source["role_permissions"]:
        if row.role_id not in personal:
            continue
        user_id = owners[row.role_id]
        if row.resource_type == "experiment":
            source["experiment_permissions"].append(
                SimpleNamespace(experiment_id=row.resource_pattern, user_id=user_id, permission=row.permission)
            )
        elif row.resource_type == "registered_model":
            source["registered_model_permissions"].append(
                SimpleNamespace(name=row.resource_pattern, user_id=user_id, permission=row.permission)
            )
        else:
            source["workspace_permissions"].append(row)  # counted as skipped
    source["roles"] = [r for r in source["roles"] if r.id not in personal]
    source["role_permissions"] = [p for p in source["role_permissions"] if p.role_id not in personal]
    source["user_role_assignments"] = [a for a in source["user_role_assignments"] if a.role_id not in personal]


async def import_auth(auth_uri: str, target: AsyncEngine, *, dry_run: bool = False) -> dict[str, int]:
    """Copy users, grants and roles; returns counts (including `skipped permissions`)."""
    engine = create_async_engine(async_url(auth_uri))
    try:
        try:
            async with engine.connect() as conn:
                source = await _read(conn)
        except sa.exc.OperationalError as exc:
            raise ImportRefused(f"Cannot open the --auth-db {mask_uri(auth_uri)}: {exc.orig}") from None
    finally:
        await engine.dispose()
    users = {u.id: u for u in source["users"]}
    _unfold_user_roles(source)
    counts = {
        "users": len(users),
        "experiment permissions": len(source["experiment_permissions"]),
        "registered model permissions": len(source["registered_model_permissions"]),
        "roles": len(source["roles"]),
        "skipped permissions": sum(len(source[t]) for t in _SKIPPED_TABLES),
    }
    async with target.begin() as conn:
        await _refuse_clashes(conn, list(users.values()))
        if not dry_run:
            await _write(conn, source, users)
    return counts


async def _refuse_clashes(conn: AsyncConnection, users: list[Any]) -> None:
    u = tables.users
    names = [row.username for row in users]
    existing = {
        r.name: r.password_hash
        for r in await conn.execute(sa.select(u.c.name, u.c.password_hash).where(u.c.name.in_(names)))
    }
    clashes = [r.username for r in users if r.username in existing and existing[r.username] != r.password_hash]
    if clashes:
        raise ImportRefused(
            f"trackgate already has users named {', '.join(sorted(clashes))} with other passwords; "
            "nothing was imported from --auth-db. Rename or delete them first."
        )


async def _write(conn: AsyncConnection, source: dict[str, list[Any]], users: dict[int, Any]) -> None:
    now = int(time.time() * 1000)
    await insert_ignore(
        conn,
        tables.users,
        [
            {
                "name": u.username,
                "password_hash": u.password_hash,
                "is_admin": bool(u.is_admin),
                "created_time": now,
                "password_changed_time": now,
            }
            for u in users.values()
        ],
    )
    p = tables.principals
    await insert_ignore(conn, p, [{"subject": u.username, "created_time": now} for u in users.values()])
    principal = {r.subject: r.id for r in await conn.execute(sa.select(p.c.subject, p.c.id))}

    def owner(user_id: int) -> int:
        return principal[users[user_id].username]

    grants = [
        {
            "principal_id": owner(g.user_id),
            "resource_type": "experiment",
            "resource_id": str(g.experiment_id),
            "permission": _permission(g.permission),
        }
        for g in source["experiment_permissions"]
    ] + [
        {
            "principal_id": owner(g.user_id),
            "resource_type": "registered_model",
            "resource_id": g.name,
            "permission": _permission(g.permission),
        }
        for g in source["registered_model_permissions"]
    ]
    await _upsert_grants(conn, grants)
    await _roles(conn, source, owner)


async def _upsert_grants(conn: AsyncConnection, grants: list[dict[str, Any]]) -> None:
    g = tables.grants
    for grant in grants:  # keyed by a unique constraint, not the primary key: one statement each
        updated = await conn.execute(
            g.update()
            .where(
                g.c.principal_id == grant["principal_id"],
                g.c.resource_type == grant["resource_type"],
                g.c.resource_id == grant["resource_id"],
            )
            .values(permission=grant["permission"])
        )
        if updated.rowcount == 0:
            await conn.execute(g.insert().values(**grant))


async def _roles(conn: AsyncConnection, source: dict[str, list[Any]], owner: Any) -> None:
    r = tables.roles
    await insert_ignore(
        conn,
        r,
        [{"workspace": row.workspace, "name": row.name, "description": row.description} for row in source["roles"]],
    )
    ids = {(row.workspace, row.name): row.id for row in await conn.execute(sa.select(r.c.workspace, r.c.name, r.c.id))}
    role_id = {row.id: ids[(row.workspace, row.name)] for row in source["roles"]}
    rp = tables.role_permissions
    for row in source["role_permissions"]:
        if row.resource_type not in _RESOURCE_TYPES:
            continue
        exists = await conn.scalar(
            sa.select(rp.c.id).where(
                rp.c.role_id == role_id[row.role_id],
                rp.c.resource_type == row.resource_type,
                rp.c.resource_pattern == row.resource_pattern,
            )
        )
        if exists is None:
            await conn.execute(
                rp.insert().values(
                    role_id=role_id[row.role_id],
                    resource_type=row.resource_type,
                    resource_pattern=row.resource_pattern,
                    permission=_permission(row.permission),
                )
            )
    await insert_ignore(
        conn,
        tables.role_assignments,
        [{"principal_id": owner(a.user_id), "role_id": role_id[a.role_id]} for a in source["user_role_assignments"]],
    )
