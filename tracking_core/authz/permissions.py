"""Permission levels and how several grants on one resource combine (MLflow 3.17's model).

READ < USE < EDIT < MANAGE; DENY is explicit and beats every other grant it meets, wherever it
comes from (the caller's own grant or a role). NO_PERMISSIONS is only a default, never a grant.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from tracking_core.errors import invalid


class Permission(IntEnum):
    DENY = -1
    NO_PERMISSIONS = 0
    READ = 1
    USE = 2
    EDIT = 3
    MANAGE = 4

    def allows(self, needed: Permission) -> bool:
        return self >= needed and self != Permission.DENY


GRANTABLE = frozenset({"READ", "USE", "EDIT", "MANAGE", "DENY"})

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
RESOURCE_TYPES = (EXPERIMENT, REGISTERED_MODEL)
WILDCARD = "*"


def parse_grantable(name: str | None) -> Permission:
    if name not in GRANTABLE:
        raise invalid(f"Invalid permission '{name}'. Valid permissions are: {tuple(sorted(GRANTABLE))}")
    return Permission[name]


def resource_type(name: str | None) -> str:
    if name not in RESOURCE_TYPES:
        raise invalid(f"Invalid resource type '{name}'. Valid resource types are: {RESOURCE_TYPES}")
    return name


def fold(found: Iterable[Permission], default: Permission) -> Permission:
    """The effective permission from every grant that applies; `default` when none does."""
    best: Permission | None = None
    for permission in found:
        if permission == Permission.DENY:
            return Permission.DENY
        best = permission if best is None else max(best, permission)
    return default if best is None else best
