"""The caller as authorization sees it: admin or not, and every grant that applies to them.

Loaded with one query (`store.grants.caller_rows`) and kept per worker for `TTL` seconds, so a
burst of log_metric calls costs no permission query at all. A change made through this worker
(grant, revoke, role edit, user change) clears the cache at once; other workers, and changes
made with the CLI, are seen within `TTL`: a cached caller is never used once it is older.

The cache is keyed by the gateway's identity headers as they arrive, so a hit decodes and builds
nothing. A cached caller also remembers every decision it made (the permission on a resource, and
which resources passed which check): those depend only on its grants, so they expire with it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracking_core.authz.permissions import EXPERIMENT, REGISTERED_MODEL, WILDCARD, Permission, fold
from tracking_core.authz.visibility import Scope, Visibility
from tracking_core.contract import EMAIL_HEADER, GROUPS_HEADER, METHOD_HEADER, SUBJECT_HEADER, Identity, parse_identity
from tracking_core.settings import CoreSettings
from tracking_core.store.database import Database
from tracking_core.store.grants import ADMIN_MARK, caller_rows

TTL = 2.0
MAX_ENTRIES = 4096
MAX_DECISIONS = 10_000  # per caller (who lives at most TTL); past it, decisions are worked out again

Grants = Mapping[tuple[str, str], tuple[Permission, ...]]


@dataclass(frozen=True)
class Caller:
    subject: str | None  # None: no identity (a route the gateway lets through unauthenticated)
    method: str | None
    is_admin: bool
    default: Permission
    grants: Grants = field(default_factory=dict)
    identity: Identity | None = field(default=None, compare=False)  # as the gateway named the caller
    # Answers already worked out: a Caller lives TTL seconds in the cache and serves many requests
    # on the same few resources (a training job's run), so the hot path is one dict lookup.
    _known: dict[tuple[str, str], Permission] = field(default_factory=dict, compare=False, repr=False)
    # Checks passed (authz.guard): (what was asked, the request's key) -> the resource that allowed it.
    passed: dict[tuple[Any, Any], tuple[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def permission(self, rtype: str, rid: str) -> Permission:
        if self.is_admin:
            return Permission.MANAGE
        key = (rtype, rid)
        known = self._known.get(key)
        if known is None:
            found = (*self.grants.get(key, ()), *self.grants.get((rtype, WILDCARD), ()))
            known = fold(found, self.default)
            if len(self._known) < MAX_DECISIONS:
                self._known[key] = known
        return known

    def remember(self, asked: tuple[Any, Any], resource: tuple[str, str]) -> None:
        """A check this caller passed; `passed[asked]` answers it next time (authz.guard)."""
        if len(self.passed) < MAX_DECISIONS:
            self.passed[asked] = resource

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


# The cache key: the identity headers' values as received (subject, groups, method, email).
HeaderKey = tuple[str, str | None, str | None, str | None]


def header_key(headers: Mapping[str, str]) -> HeaderKey | None:
    subject = headers.get(SUBJECT_HEADER)
    if not subject:
        return None
    return subject, headers.get(GROUPS_HEADER), headers.get(METHOD_HEADER), headers.get(EMAIL_HEADER)


class CallerCache:
    def __init__(self, db: Database, config: CoreSettings) -> None:
        self._db = db
        self._default = Permission[config.default_permission]
        self._admin_users = frozenset(config.admin_users)
        self._admin_groups = frozenset(config.admin_groups)
        self._entries: dict[HeaderKey, tuple[float, Caller]] = {}
        # No identity on a server that authenticates: the operator exempted this route, so it may
        # read what everyone may read by default, and never write. Its answers never change (it
        # has no grants), so it is never reloaded.
        self._anonymous = Caller(None, None, False, min(self._default, Permission.READ))

    def anonymous(self) -> Caller:
        return self._anonymous

    def clear(self) -> None:
        self._entries.clear()

    def cached(self, headers: Mapping[str, str]) -> Caller | None:
        """The caller the identity headers name, if loaded less than TTL ago; the anonymous caller
        without them (the hot path: no coroutine, nothing decoded)."""
        key = header_key(headers)
        if key is None:
            return self._anonymous
        hit = self._entries.get(key)
        if hit is None or time.monotonic() - hit[0] >= TTL:
            return None
        return hit[1]

    async def load(self, headers: Mapping[str, str]) -> Caller:
        """The caller the identity headers name: from the cache, else from the database."""
        if (hit := self.cached(headers)) is not None:
            return hit
        identity = parse_identity(headers)
        key = header_key(headers)
        if identity is None or key is None:
            return self._anonymous
        now = time.monotonic()
        caller = await self._load(identity)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (now, caller)
        return caller

    async def lookup(self, subject: str) -> Caller:
        """Another subject's standing, for the grants API (their groups are unknown here: only
        their own grants, assigned roles and admin flag count). Not cached."""
        return await self._load(Identity(subject, "lookup"))

    async def _load(self, identity: Identity) -> Caller:
        async with self._db.read() as conn:
            rows = (await conn.execute(caller_rows(identity.subject, identity.groups))).all()
        collected: dict[tuple[str, str], list[Permission]] = {}
        is_admin = identity.subject in self._admin_users or not self._admin_groups.isdisjoint(identity.groups)
        for rtype, pattern, permission in rows:
            if rtype == ADMIN_MARK:
                is_admin = True
            elif permission in Permission.__members__:
                collected.setdefault((rtype, pattern), []).append(Permission[permission])
        return Caller(
            identity.subject, identity.method, is_admin, self._default,
            {k: tuple(v) for k, v in collected.items()}, identity,
        )
