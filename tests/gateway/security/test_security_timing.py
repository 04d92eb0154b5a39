"""Finding 8 of issue 13: whether a name is a user must not show in how long a wrong password
takes. htpasswd users (bcrypt, cheap) were told from unknown names (a scrypt decoy) by timing,
and a password over bcrypt's 72 bytes returned without hashing at all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from gateway.auth import passwords
from gateway.auth.basic import BasicAuthenticator, UserSources
from gateway.auth.htpasswd import Htpasswd
from gateway.config import load
from tests.gateway.auth.support import PASSWORD
from tracking_core.store.database import create_engine


@pytest.fixture
async def authenticator(tracking_db: str, tmp_path: Path) -> Any:
    path = tmp_path / "htpasswd"
    path.write_text(f"hilda:{bcrypt.hashpw(b'hilda-password', bcrypt.gensalt(rounds=5)).decode()}\n")
    engine = create_engine(load({"backend_store_uri": tracking_db}, env={}))
    yield BasicAuthenticator(UserSources(engine, Htpasswd(str(path))), ttl=30)
    await engine.dispose()


def kind(stored: str) -> str:
    return "scrypt" if stored.startswith("scrypt$") else stored[:7]  # e.g. "$2b$05$"


async def test_every_name_costs_the_same_hashes(authenticator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = passwords.verify

    def verify(stored: str, password: str) -> bool:
        checked.append(kind(stored))
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify", verify)
    work = {}
    for name in ("alice", "hilda", "nobody"):  # in the database, in the htpasswd file, neither
        checked.clear()
        assert await authenticator.check(name, "wrong password") is None
        work[name] = sorted(checked)
    assert work["alice"] == work["hilda"] == work["nobody"] == ["$2b$05$", "scrypt"], work
    assert await authenticator.check("hilda", "hilda-password") is not None
    assert await authenticator.check("alice", PASSWORD) is not None


async def test_wrong_password_timing_does_not_tell_users_apart(authenticator: Any) -> None:
    async def cost(name: str) -> float:
        started = time.perf_counter()
        await authenticator.check(name, f"wrong-{time.monotonic_ns()}")
        return time.perf_counter() - started

    htpasswd_user = min([await cost("hilda") for _ in range(2)])
    unknown = min([await cost("nobody") for _ in range(2)])
    assert unknown / htpasswd_user < 3, (unknown, htpasswd_user)  # before: 539 ms against 6.5 ms


def test_an_overlong_password_is_hashed_and_refused() -> None:
    stored = bcrypt.hashpw(b"p" * 72, bcrypt.gensalt(rounds=10)).decode()
    started = time.perf_counter()
    assert not passwords.verify(stored, "q" * 72)
    normal = time.perf_counter() - started
    started = time.perf_counter()
    assert not passwords.verify(stored, "p" * 100)  # its first 72 bytes match: still refused
    overlong = time.perf_counter() - started
    assert overlong > normal / 3, (overlong, normal)
    assert passwords.verify(stored, "p" * 72)
