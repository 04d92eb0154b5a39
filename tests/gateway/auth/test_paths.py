"""Skip-auth routes are decided on the normalised path only: a table of bypass attempts."""

from __future__ import annotations

import pytest

from gateway.auth.paths import SkipAuth, normalise

EXEMPT = [
    ("/healthz", True),
    ("/readyz", True),
    ("/version", True),
    ("/health", True),
    ("/.well-known/jwks.json", True),
    ("/oauth2/start", True),
    ("/oauth2/callback?code=x&state=y", True),
    ("/healthz?x=/api/2.0/mlflow/runs/create", True),  # the query never matters, either way
    # Bypass attempts: each must need authentication.
    ("/healthz/../api/2.0/mlflow/experiments/search", False),
    ("/healthz/%2e%2e/api/2.0/mlflow/experiments/search", False),
    ("/%68ealthz", False),
    ("//healthz", False),
    ("/healthz/", False),
    ("/healthz;x", False),
    ("/healthz;/../api/2.0/mlflow/runs/create", False),
    ("/healthz%2F..%2Fapi%2F2.0%2Fmlflow%2Fruns%2Fcreate", False),
    ("/healthz%2f", False),
    ("/healthz#/../api", False),
    ("/healthz%23/../api", False),
    ("/healthz\\..\\api", False),
    ("/./healthz", False),
    ("/api/2.0/mlflow/runs/create?x=/healthz", False),
    ("/api/2.0/mlflow/runs/create#/healthz", False),
    ("/oauth2/../api/2.0/mlflow/runs/create", False),
    ("/oauth2/%2e%2e/api/2.0/mlflow/runs/create", False),
    ("/.well-known/jwks.json/../../api/2.0/mlflow/runs/create", False),
    ("/.well-known/jwksxjson", False),  # dots are literal
    ("/healthzz", False),
    ("/xhealthz", False),
    ("/%ff%fe", False),  # not UTF-8
    ("/", False),
    ("/api/2.0/mlflow/experiments/search", False),
]


@pytest.mark.parametrize(("path", "exempt"), EXEMPT, ids=[p for p, _ in EXEMPT])
def test_builtin_skip_routes(path: str, exempt: bool) -> None:
    assert SkipAuth(()).exempt(path) is exempt


PREFIXED = [
    ("/mlflow/health", True),
    ("/mlflow/version", True),
    ("/healthz", True),  # the gateway's own probes are not under the prefix
    ("/mlflow//health", False),
    ("/mlflow/x/../health", False),
    ("/mlflowx/health", False),
    ("/mlflow/api/2.0/mlflow/experiments/search", False),
]


@pytest.mark.parametrize(("path", "exempt"), PREFIXED, ids=[p for p, _ in PREFIXED])
def test_static_prefix(path: str, exempt: bool) -> None:
    assert SkipAuth((), "/mlflow").exempt(path) is exempt


CONFIGURED = [
    ("/public/report.html", True),
    ("/public/a/b", True),
    ("/public/../api/2.0/mlflow/runs/create", False),
    ("/api/2.0/mlflow/runs/create?p=/public/x", False),
    ("/x/public/y", False),  # fullmatch: a pattern is not searched for inside the path
]


@pytest.mark.parametrize(("path", "exempt"), CONFIGURED, ids=[p for p, _ in CONFIGURED])
def test_configured_patterns_match_the_whole_normalised_path(path: str, exempt: bool) -> None:
    assert SkipAuth([r"/public/.*"]).exempt(path) is exempt


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a/./b/../c", "/a/c"),
        ("//a///b", "/a/b"),
        ("/%61pi/x", "/api/x"),
        ("/a/b/?q=1", "/a/b/"),
        ("/../../etc", "/etc"),
        ("/mlflow/api/x", "/api/x"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw, "/mlflow") == expected
