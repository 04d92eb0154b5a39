"""What the core is told: identity headers (any Unicode survives), the consumed credential gone."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway import keys
from gateway.auth import upstream
from gateway.auth.base import Consumed, Identity
from tracking_core import contract

IDENTITIES = [
    Identity("alice", "basic"),
    Identity("Zoë Ñandú", "mtls", email="zoë@example.test"),
    Identity("repo:org/app:ref:refs/heads/main", "bearer", groups=("ml,team", "100%", "a b")),
    Identity("svc", "bearer", email="svc@example.test", groups=("g",)),
]


@pytest.mark.parametrize("identity", IDENTITIES, ids=[i.subject for i in IDENTITIES])
def test_identity_round_trips_through_headers(identity: Identity) -> None:
    headers = contract.identity_headers(identity)
    assert all(value.isascii() and "\n" not in value for value in headers.values())
    assert contract.parse_identity(CIMultiDict(headers)) == identity


@pytest.mark.parametrize(
    ("cookie", "kept"),
    [
        ("trackgate_session=abc", None),
        ("a=1; trackgate_session=abc; b=2", "a=1; b=2"),
        ("trackgate_session_0=x; trackgate_session_1=y; c=3", "c=3"),
        ("trackgate_sessionx=keep", "trackgate_sessionx=keep"),
    ],
    ids=["only", "middle", "split-parts", "similar-name"],
)
def test_consumed_cookies_are_removed(cookie: str, kept: str | None) -> None:
    request = make_mocked_request("GET", "/x", headers={"Cookie": cookie})
    request[keys.identity] = Identity("alice", "session")
    request[keys.consumed] = Consumed(cookies=frozenset({"trackgate_session"}))
    headers = CIMultiDict({"Cookie": cookie, "Authorization": "Bearer keep-me"})
    upstream.apply(request, headers)
    assert headers.get("Cookie") == kept
    assert headers["Authorization"] == "Bearer keep-me"  # not consumed by this method
    assert headers["X-Trackgate-Subject"] == "alice"


def test_unauthenticated_requests_get_no_identity() -> None:
    request = make_mocked_request("GET", "/healthz")
    headers: CIMultiDict[str] = CIMultiDict({"Authorization": "Basic eA=="})
    upstream.apply(request, headers)
    assert dict(headers) == {"Authorization": "Basic eA=="}
