"""The rule table covers every endpoint, and grants combine as MLflow's model says."""

from __future__ import annotations

from tracking_core.app import TRACKING_ENDPOINTS
from tracking_core.authz.caller import Caller
from tracking_core.authz.permissions import EXPERIMENT, Permission, fold
from tracking_core.authz.routes import AUTH_ENDPOINTS, RULES, Kind

P = Permission


def test_every_endpoint_has_a_rule() -> None:
    missing = [e.path for e in (*TRACKING_ENDPOINTS, *AUTH_ENDPOINTS) if e.handler not in RULES]
    assert missing == []


def test_writes_never_need_less_than_edit() -> None:
    for endpoint in TRACKING_ENDPOINTS:
        rule = RULES[endpoint.handler]
        if rule.kind is Kind.RESOURCE and set(endpoint.methods) & {"POST", "PATCH", "DELETE"} \
                and "search" not in endpoint.path and "get" not in endpoint.path:
            assert rule.need >= P.EDIT, endpoint.path


def test_deny_beats_every_grant_and_default_applies_without_one() -> None:
    assert fold([P.MANAGE, P.DENY, P.READ], P.READ) == P.DENY
    assert fold([P.READ, P.EDIT], P.NO_PERMISSIONS) == P.EDIT
    assert fold([], P.NO_PERMISSIONS) == P.NO_PERMISSIONS
    assert not P.DENY.allows(P.READ) and not P.NO_PERMISSIONS.allows(P.READ)


def test_scope_of_a_caller() -> None:
    grants = {(EXPERIMENT, "1"): (P.DENY,), (EXPERIMENT, "2"): (P.READ,)}
    open_default = Caller("u", "basic", False, P.READ, grants)
    assert open_default.scope(EXPERIMENT).hidden == {"1"}
    closed = Caller("u", "basic", False, P.NO_PERMISSIONS, grants)
    assert closed.scope(EXPERIMENT).only == {"2"}
    wildcard_deny = Caller("u", "basic", False, P.READ, {(EXPERIMENT, "*"): (P.DENY,), (EXPERIMENT, "2"): (P.EDIT,)})
    assert wildcard_deny.scope(EXPERIMENT).only == frozenset()  # a wildcard DENY beats the grant on 2
    assert Caller("root", "basic", True, P.NO_PERMISSIONS).visibility() is None
