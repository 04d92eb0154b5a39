"""`--auth forwarded`: oauth2-proxy's identity headers, believed only from trusted proxies.

The gateway runs in this process in front of the stand-in core, whose /echo returns the headers
the core received: the identity the gateway vouches for, and never a client's own claim.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.config import ConfigError, load
from tests.gateway.auth.support import PASSWORD, basic
from tests.gateway.test_gateway_proxy import raw_request

Factory = Callable[..., Awaitable[Any]]
PROXY = {"auth": "forwarded", "trusted_proxies": "127.0.0.1/32"}
ELSEWHERE = {"auth": "forwarded", "trusted_proxies": "10.0.0.0/8"}


async def core_sees(gw: Any, lines: list[str]) -> tuple[int, dict[str, str]]:
    """Send raw header lines (exact spellings, duplicates kept); the identity headers at the core."""
    head = "\n".join(["GET /echo HTTP/1.1", f"Host: 127.0.0.1:{gw.port}", "Connection: close", *lines, ""])
    status, _, body = await raw_request(gw.port, head)
    if status != 200:
        return status, {}
    received = [(k.lower(), v) for k, v in json.loads(body)["headers"]]
    names = ("x-trackgate-", "x-forwarded-u", "x-forwarded-e", "x-forwarded-g", "x-auth-")
    return status, {k: v for k, v in received if k.replace("_", "-").startswith(names)}


async def test_trusted_proxy_identity_reaches_the_core(gateway_factory: Factory) -> None:
    gw = await gateway_factory(**PROXY)
    status, seen = await core_sees(
        gw, ["X-Forwarded-User: alice", "X-Forwarded-Email: alice@example.com", "X-Forwarded-Groups: ml, admins "]
    )
    assert status == 200
    assert seen["x-trackgate-subject"] == "alice"
    assert seen["x-trackgate-auth-method"] == "forwarded"
    assert seen["x-trackgate-email"] == "alice@example.com"
    assert "ml" in seen["x-trackgate-groups"] and "admins" in seen["x-trackgate-groups"]
    assert not [k for k in seen if not k.startswith("x-trackgate-")], "the proxy's own headers are stripped"


async def test_configured_header_names(gateway_factory: Factory) -> None:
    gw = await gateway_factory(
        **PROXY, forwarded_user_header="X-Auth-Request-User", forwarded_email_header="X-Auth-Request-Email"
    )
    status, seen = await core_sees(gw, ["X-Auth-Request-User: bob", "X-Auth-Request-Email: bob@example.com"])
    assert status == 200 and seen["x-trackgate-subject"] == "bob"
    assert (await core_sees(gw, ["X-Forwarded-User: bob"]))[0] == 401  # the default name means nothing now


# (id, header lines a client sends directly, from an address that is not a trusted proxy)
UNTRUSTED = [
    ("canonical", ["X-Forwarded-User: admin"]),
    ("lowercase", ["x-forwarded-user: admin"]),
    ("underscores", ["X_Forwarded_User: admin"]),
    ("with-email-and-groups", ["X-Forwarded-User: admin", "X-Forwarded-Groups: admins"]),
    ("duplicates", ["X-Forwarded-User: a", "X-Forwarded-User: admin"]),
    ("trackgate-own", ["X-Trackgate-Subject: admin"]),
]


@pytest.mark.parametrize("lines", [c[1] for c in UNTRUSTED], ids=[c[0] for c in UNTRUSTED])
async def test_headers_from_other_addresses_are_not_believed(gateway_factory: Factory, lines: list[str]) -> None:
    gw = await gateway_factory(**ELSEWHERE)
    status, _ = await core_sees(gw, lines)
    assert status == 401


@pytest.mark.parametrize("lines", [c[1] for c in UNTRUSTED], ids=[c[0] for c in UNTRUSTED])
async def test_untrusted_claims_stripped_when_another_method_accepts(
    gateway_factory: Factory, tracking_db: str, lines: list[str]
) -> None:
    gw = await gateway_factory(auth="forwarded,basic", trusted_proxies="10.0.0.0/8", backend_store_uri=tracking_db)
    status, seen = await core_sees(gw, [*lines, f"Authorization: {basic('alice', PASSWORD)}"])
    assert status == 200
    assert seen == {"x-trackgate-subject": "alice", "x-trackgate-auth-method": "basic"}


# (id, header lines from the trusted proxy that must be refused: which copy it wrote is unknowable)
SMUGGLED = [
    ("duplicate-user", ["X-Forwarded-User: alice", "X-Forwarded-User: admin"]),
    ("duplicate-groups", ["X-Forwarded-User: alice", "X-Forwarded-Groups: ml", "X-Forwarded-Groups: admins"]),
    ("underscore-beside", ["X-Forwarded-User: alice", "X_Forwarded_User: admin"]),
    ("underscore-only", ["X_Forwarded_User: admin"]),
    ("mixed-separators-email", ["X-Forwarded-User: alice", "X-Forwarded_Email: root@example.com"]),
]


@pytest.mark.parametrize("lines", [c[1] for c in SMUGGLED], ids=[c[0] for c in SMUGGLED])
async def test_ambiguous_headers_from_the_proxy_are_refused(gateway_factory: Factory, lines: list[str]) -> None:
    gw = await gateway_factory(**PROXY)
    status, _ = await core_sees(gw, lines)
    assert status == 401


async def test_no_user_header_from_the_proxy_is_not_a_login(gateway_factory: Factory) -> None:
    gw = await gateway_factory(**PROXY)
    assert (await core_sees(gw, ["X-Forwarded-Email: alice@example.com"]))[0] == 401


def test_forwarded_needs_trusted_proxies() -> None:
    with pytest.raises(ConfigError) as exc:
        load({"auth": "forwarded"}, env={})
    assert any("trusted_proxies" in p for p in exc.value.problems)


def test_header_names_are_checked() -> None:
    with pytest.raises(ConfigError) as exc:
        load({**PROXY, "forwarded_user_header": "X Forwarded: User"}, env={})
    assert any("forwarded_user_header" in p for p in exc.value.problems)
