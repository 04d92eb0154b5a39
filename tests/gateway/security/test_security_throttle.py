"""Findings 1 and 14 of issue 13: the failure throttle counts attempts still in flight, keeps one
address from hogging the password-hash threads, and locks out (address, user) rather than a
whole address, while still stopping password spraying across users.

Clients come from different loopback addresses (127.0.0.1 and 127.0.0.2) to stand for a
neighbour behind the same NAT and a different machine."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gateway.auth import passwords, throttle
from tests.gateway.auth.support import PASSWORD, add_user, basic, password_hash


def session(source: str = "127.0.0.1") -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0), force_close=True))


async def status(s: aiohttp.ClientSession, gw: Any, user: str, password: str) -> int:
    async with s.get(gw.url + "/echo", headers={"Authorization": basic(user, password)}) as r:
        return r.status


@pytest.fixture
async def gw(gateway_factory: Callable[..., Awaitable[Any]], tracking_db: str) -> Any:
    add_user(tracking_db, "bob", password_hash(PASSWORD))
    return await gateway_factory(auth="basic", backend_store_uri=tracking_db)


async def test_parallel_wrong_passwords_are_throttled_while_in_flight(
        gw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: all 60 got 401 (the throttle was checked before the slow hash, the failure
    recorded after it), so a parallel burst was never limited."""
    monkeypatch.setattr(throttle, "MAX_FAILURES", 5)  # five slow hashes instead of twenty
    async with session() as s:
        results = await asyncio.gather(*(status(s, gw, "alice", f"wrong-{i}") for i in range(60)))
    assert results.count(401) == throttle.MAX_FAILURES
    assert results.count(429) == 60 - throttle.MAX_FAILURES


async def test_a_flood_from_one_address_does_not_queue_other_sign_ins(
        gw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: one first-come line for two hash threads, so a real user's first login waited
    behind every wrong password already queued (30 s behind 50)."""
    started: list[str] = []
    lock = threading.Lock()
    real = passwords.verify

    def verify(stored: str, password: str) -> bool:
        with lock:
            started.append(password)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify", verify)
    async with session("127.0.0.2") as attacker, session("127.0.0.1") as user:
        flood = [asyncio.ensure_future(status(attacker, gw, f"nobody-{i}", f"guess-{i}")) for i in range(8)]
        while not started:  # the flood reached the hash threads
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # and the rest of it is queued
        assert await status(user, gw, "alice", PASSWORD) == 200
        assert set(await asyncio.gather(*flood)) == {401}
    # At most one of the flood's checks ran or waited for a thread ahead of the user's.
    assert started.index(PASSWORD) <= 2, started


async def test_lockout_is_per_user_and_known_good_credentials_keep_working(
        gw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: after MAX_FAILURES wrong passwords from an address, every credential from it got
    429, the right one included (one broken CI job behind a NAT locked out its neighbours)."""
    monkeypatch.setattr(throttle, "MAX_FAILURES", 3)
    async with session() as s:
        assert await status(s, gw, "alice", PASSWORD) == 200  # signed in before the lockout
    async with session() as s:
        for i in range(3):
            assert await status(s, gw, "alice", f"wrong-{i}") == 401
        assert await status(s, gw, "alice", "wrong-again") == 429  # alice from here is throttled
        assert await status(s, gw, "alice", PASSWORD) == 200  # ...but her known password still works
        assert await status(s, gw, "bob", PASSWORD) == 200  # and the neighbour is not locked out
    async with session("127.0.0.2") as other:
        assert await status(other, gw, "alice", "wrong-elsewhere") == 401  # other addresses unaffected


async def test_spraying_many_users_from_one_address_is_stopped(gw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_ADDRESS_FAILURES", 5)
    async with session() as s:
        for i in range(5):
            assert await status(s, gw, f"user-{i}", "Summer2026!") == 401
        assert await status(s, gw, "user-9", "Summer2026!") == 429
        assert await status(s, gw, "bob", PASSWORD) == 429  # never signed in here: not known good
    async with session("127.0.0.2") as other:
        assert await status(other, gw, "bob", PASSWORD) == 200
