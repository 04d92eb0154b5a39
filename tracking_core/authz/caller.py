"""The caller as authorization sees it: admin or not, and every grant that applies to them.

Loaded with one query (`store.grants.caller_rows`) and kept per worker for `TTL` seconds, so a
burst of log_metric calls costs no permission query at all. A change made through this worker
(grant, revoke, role edit) clears the cache at once; other workers see it within `TTL`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tracking_core.authz.permissions import EXPERIMENT, REGISTERED_MODEL, WILDCARD, Permission, fold
from tracking_core.authz.visibility import Scope, Visibility
from tracking_core.contract import Identity
from tracking_core.settings import CoreSettings
from tracking_core.store.database import Database
from tracking_core.store.grants import ADMIN_MARK, caller_rows

TTL = 2.0
MAX_ENTRIES = 4096

Grants = Mapping[tuple[str, str], tuple[Permission, ...]]


@dataclass(frozen=True)
class Caller:
    subject: str | None  # None: no identity (a route the gateway lets through unauthenticated)
    method: str | None
    is_admin: bool
    default: Permission
    grants: Grants = field(default_factory=dict)
    # Answers already worked out: a Caller lives TTL seconds in the cache and serves many requests
    # on the same few resources (a training job's run), so the hot path is one dict lookup.
    _known: dict[tuple[str, str], Permission] = field(default_factory=dict, compare=False, repr=False)

    def permission(self, rtype: str, rid: str) -> Permission:
        if self.is_admin:
            return Permission.MANAGE
        key = (rtype, rid)
        known = self._known.get(key)
        if known is None:
            found = (*self.grants.get(key, ()), *self.grants.get((rtype, WILDCARD), ()))
            known = self._known[key] = fold(found, self.default)
        return known

    def scope(self, rtype: str) -> Scope:
        """What this caller may read of one resource type, for a search's WHERE."""
        base = self.permission(rtype, WILDCARD)
        named = {rid for (t, rid) in self.grants if t == rtype and rid != WILDCARD}
        if base.allows(Permission.READ):
            return Scope(hidden=frozenset(r for r in named if not self.permission(rtype, r).allows(Permission.READ)))
        return Scope(only=frozenset(r for r in named if self.permission(rtype, r).allows(Permission.READ)))

    def visibility(self) -> Visibility | None:
        if self.is_admin:
            return None
        return Visibility(experiments=self.scope(EXPERIMENT), models=self.scope(REGISTERED_MODEL))


class CallerCache:
    def __init__(self, db: Database, config: CoreSettings) -> None:
        self._db = db
        self._default = Permission[config.default_permission]
        self._admin_users = frozenset(config.admin_users)
        self._admin_groups = frozenset(config.admin_groups)
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[float, Caller]] = {}
        # No identity on a server that authenticates: the operator exempted this route, so it may
        # read what everyone may read by default, and never write.
        self._anonymous = Caller(None, None, False, min(self._default, Permission.READ))

    def anonymous(self) -> Caller:
        return self._anonymous

    async def lookup(self, subject: str) -> Caller:
        """Another subject's standing, for the grants API (their groups are unknown here: only
        their own grants, assigned roles and admin flag count)."""
        return await self.load(Identity(subject, "lookup"))

    def clear(self) -> None:
        self._entries.clear()

    def cached(self, identity: Identity) -> Caller | None:
        """The caller from the cache, if loaded less than TTL ago (the hot path: no coroutine)."""
        hit = self._entries.get((identity.subject, identity.groups))
        if hit is None or time.monotonic() - hit[0] >= TTL:
            return None
        if hit[1].method == identity.method:
            return hit[1]
        return replace(hit[1], method=identity.method, _known=hit[1]._known)

    async def load(self, identity: Identity) -> Caller:
        if (hit := self.cached(identity)) is not None:
            return hit
        key = (identity.subject, identity.groups)
        now = time.monotonic()
        async with self._db.read() as conn:
            rows = (await conn.execute(caller_rows(identity.subject, identity.groups))).all()
        collected: dict[tuple[str, str], list[Permission]] = {}
        is_admin = identity.subject in self._admin_users or not self._admin_groups.isdisjoint(identity.groups)
        for rtype, pattern, permission in rows:
            if rtype == ADMIN_MARK:
                is_admin = True
            elif permission in Permission.__members__:
                collected.setdefault((rtype, pattern), []).append(Permission[permission])
        caller = Caller(
            identity.subject, identity.method, is_admin, self._default,
            {k: tuple(v) for k, v in collected.items()},
        )
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (now, caller)
        return caller
