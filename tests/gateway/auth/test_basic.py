"""Basic auth against a real SQLite tracking database and htpasswd files: the verification cache
(what it remembers, when it forgets), single flight, and the refusals."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import make_mocked_request

from gateway.auth import basic, passwords
from gateway.auth.base import AuthenticationFailed
from gateway.auth.basic import BasicAuthenticator, UserSources
from gateway.auth.htpasswd import Htpasswd
from gateway.config import load
from tests.gateway.auth.support import PASSWORD, add_user, password_hash, set_password_hash
from tracking_core.store.database import create_engine


@pytest.fixture
async def engine(tracking_db: str) -> Any:
    engine = create_engine(load({"backend_store_uri": tracking_db}, env={}))
    yield engine
    await engine.dispose()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored hashes each slow check ran against (a spy on the real function)."""
    calls: list[str] = []
    real = passwords.verify

    def verify(stored: str, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify", verify)
    return calls


def request(authorization: str | None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return make_mocked_request("GET", "/api/2.0/mlflow/experiments/search", headers=headers)


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_accepts_and_remembers(engine: Any, counted: list[str]) -> None:
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    for _ in range(5):
        identity = await auth.authenticate(request(basic_header("alice", PASSWORD)))
        assert identity is not None and (identity.subject, identity.method) == ("alice", "basic")
    assert len(counted) == 1  # one slow check, four cache hits


async def test_concurrent_first_requests_share_one_check(engine: Any, counted: list[str]) -> None:
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    results = await asyncio.gather(*(auth.check("alice", PASSWORD) for _ in range(8)))
    assert all(r is not None and r.name == "alice" for r in results)
    assert len(counted) == 1


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", PASSWORD), ("alice", "")],
                         ids=["wrong-password", "unknown-user", "empty-password"])
async def test_refusals_are_final(engine: Any, user: str, password: str) -> None:
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    with pytest.raises(AuthenticationFailed) as refused:
        await auth.authenticate(request(basic_header(user, password)))
    assert refused.value.message == "Invalid username or password."  # the same for both: no user oracle
    assert password not in refused.value.message or not password


async def test_unknown_user_costs_a_hash_check_too(engine: Any, counted: list[str]) -> None:
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    assert await auth.check("nobody", "x") is None
    assert counted == [passwords.dummy_hash()]


@pytest.mark.parametrize(
    ("header", "outcome"),
    [("Bearer abc", None), ("Negotiate abc", None), ("Basic !!!", "Malformed"), ("Basic " + base64.b64encode(
        b"no-colon").decode(), "Malformed"), ("Basic " + base64.b64encode(b":pw").decode(), "Malformed")],
    ids=["bearer", "negotiate", "bad-base64", "no-colon", "empty-user"],
)
async def test_header_shapes(engine: Any, header: str, outcome: str | None) -> None:
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    if outcome is None:
        assert await auth.authenticate(request(header)) is None
    else:
        with pytest.raises(AuthenticationFailed, match=outcome):
            await auth.authenticate(request(header))


async def test_password_change_ends_the_cached_password(engine: Any, tracking_db: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic, "RECHECK", 0.0)  # re-read the user row on every hit
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    assert await auth.check("alice", PASSWORD) is not None
    set_password_hash(tracking_db, "alice", password_hash("a-new-password"))
    assert await auth.check("alice", PASSWORD) is None
    assert await auth.check("alice", "a-new-password") is not None


async def test_deleted_user_is_refused_at_the_next_recheck(engine: Any, tracking_db: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic, "RECHECK", 0.0)
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    assert await auth.check("alice", PASSWORD) is not None
    sync = sa.create_engine(tracking_db)
    with sync.begin() as conn:
        conn.execute(sa.text("DELETE FROM users WHERE name = 'alice'"))
    sync.dispose()
    assert await auth.check("alice", PASSWORD) is None


async def test_cache_is_bounded(engine: Any, tracking_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic, "MAX_ENTRIES", 2)
    for name in ("bob", "carol"):
        add_user(tracking_db, name, password_hash(PASSWORD))
    auth = BasicAuthenticator(UserSources(engine, None), ttl=30)
    for name in ("alice", "bob", "carol"):
        assert await auth.check(name, PASSWORD) is not None
    assert len(auth._cache) == 2


def test_scrypt_hash_format_and_parameters() -> None:
    stored = password_hash(PASSWORD)
    assert stored.startswith("scrypt$n=131072,r=8,p=1$")
    assert passwords.verify(stored, PASSWORD) and not passwords.verify(stored, PASSWORD + " ")
    assert PASSWORD not in stored


def write_htpasswd(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


async def test_htpasswd_bcrypt_users(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"pw-of-dora", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)
    write_htpasswd(path, ["# users", f"dora:{hashed}", "sha-user:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
                          "md5-user:$apr1$abc$def", "garbage"])
    auth = BasicAuthenticator(UserSources(None, Htpasswd(str(path))), ttl=30)
    assert (await auth.check("dora", "pw-of-dora")) is not None
    assert await auth.check("dora", "wrong") is None
    assert await auth.check("sha-user", "password") is None  # unsalted SHA-1 lines are not accepted


async def test_htpasswd_is_reread_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.auth import htpasswd

    monkeypatch.setattr(htpasswd, "RELOAD_CHECK", 0.0)
    path = tmp_path / "htpasswd"
    write_htpasswd(path, [])
    users = Htpasswd(str(path))
    assert users.get("erin") is None
    write_htpasswd(path, [f"erin:{bcrypt.hashpw(b'x', bcrypt.gensalt(rounds=4)).decode()}"])
    os.utime(path, (1, 1))  # a distinct mtime, whatever the file system's resolution
    assert users.get("erin") is not None
    path.unlink()
    assert users.get("erin") is not None  # a missing file keeps the last good set
