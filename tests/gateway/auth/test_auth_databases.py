"""The auth tables on every supported database: users, issued tokens, the stored signing key,
through the same code the gateway and the CLI run (SQLite is covered by the other tests)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from gateway.auth.basic import BasicAuthenticator, UserSources
from gateway.auth.tokens import OwnTokens, Revocations, issue, signing_key
from gateway.config import load
from tests.gateway.support import cli
from tests.services import throwaway_mariadb, throwaway_postgres
from tracking_core.store.database import create_engine


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    with (throwaway_postgres() if request.param == "postgres" else throwaway_mariadb()) as uri:
        yield uri


async def test_users_tokens_and_key(db_uri: str) -> None:
    created = cli("users", "create", "Alice", "--backend-store-uri", db_uri, stdin="pw-1-long\n")
    assert created.returncode == 0, created.stderr
    config = load({"backend_store_uri": db_uri}, env={})
    engine = create_engine(config.with_changes(db_pool_size=1, db_max_overflow=0))
    try:
        auth = BasicAuthenticator(UserSources(engine, None), 30)
        assert (await auth.check("Alice", "pw-1-long")) is not None
        assert await auth.check("alice", "pw-1-long") is None  # names compare case-sensitively everywhere
        key = await signing_key(config, engine)
        assert (await signing_key(config, engine)).kid == key.kid  # generated once, then read back
        _, claims = issue(key, config, "ci", timedelta(hours=1))
        revoked = cli("tokens", "revoke", claims["jti"], "--not-issued-here", "--backend-store-uri", db_uri)
        assert revoked.returncode == 0, revoked.stderr
        own = OwnTokens(key, config, Revocations(engine))
        assert await own.is_revoked(claims["jti"])
    finally:
        await engine.dispose()
