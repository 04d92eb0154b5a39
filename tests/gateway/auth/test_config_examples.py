"""Every example in config/ is a valid configuration, apart from the files it names that only
exist where it is deployed (certificates, mounted secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from tests.gateway.support import REPO

EXAMPLES = sorted((REPO / "config").glob("*.toml"))
DEPLOYMENT_FILES = ("does not exist", "cannot be read", "(or oidc_client_secret_file) is required")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_valid(path: Path) -> None:
    try:
        load({}, env={}, config_file=str(path))
    except ConfigError as exc:
        unexpected = [p for p in exc.problems if not any(f in p for f in DEPLOYMENT_FILES)]
        assert unexpected == []


def test_the_auth_examples_exist() -> None:
    assert {"basic.toml", "ci-tokens.toml", "mtls.toml"} <= {p.name for p in EXAMPLES}
