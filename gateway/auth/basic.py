"""HTTP basic auth (`--auth basic`): users in the tracking database and/or an htpasswd file.

A password hash is deliberately slow (scrypt, ~0.1-1 s), and the mlflow client sends the
password with every request; checking it each time made MLflow's basic-auth 40-90x slower. So a
successful check is remembered, keyed by an HMAC of user and password under a per-process
random key (the cache holds no password, and its keys are useless outside this process):
- an entry lives `basic_auth_cache_ttl` seconds, the cache is bounded (LRU);
- every RECHECK seconds a hit re-reads the user's stored hash (one indexed row), so a changed
  password or a deleted user stops working within seconds on every replica;
- concurrent first requests with the same credential share one hash check (single flight), and
  hash checks run in threads, at most HASH_CONCURRENCY at once (scrypt takes 128 MiB each);
- the hash threads are shared fairly: one client address has at most PER_ADDRESS_HASHES checks
  running or queued for a thread, the rest of its checks wait behind its own, so a flood of wrong
  passwords from one address cannot make everyone else's sign-in wait for it;
- a credential that passed is remembered as known good for KNOWN_GOOD_SECONDS (the same HMAC
  key), so the failure throttle does not lock it out with a neighbour's wrong passwords.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import keys
from gateway.auth import passwords
from gateway.auth.base import AuthenticationFailed, Consumed, Identity, Method
from gateway.auth.htpasswd import Htpasswd, bcrypt_cost, dummy_bcrypt

log = logging.getLogger("trackgate.auth.basic")

RECHECK = 5.0
MAX_ENTRIES = 10_000
HASH_CONCURRENCY = 2
PER_ADDRESS_HASHES = 1
KNOWN_GOOD_SECONDS = 86400.0
CHALLENGE = 'Basic realm="trackgate", charset="UTF-8"'
REFUSED = "Invalid username or password."


@dataclass(frozen=True)
class StoredUser:
    name: str
    password_hash: str
    is_admin: bool = False


@dataclass
class _Entry:
    user: StoredUser
    verified_at: float
    checked_at: float


class UserSources:
    """Where users are looked up: the database first, then the htpasswd file."""

    def __init__(self, engine: AsyncEngine | None, htpasswd: Htpasswd | None) -> None:
        self._engine = engine
        self._htpasswd = htpasswd
        if engine is not None:
            from tracking_core.store.tables import users

            self._select = sa.select(users.c.password_hash, users.c.is_admin).where(
                users.c.name == sa.bindparam("name")
            )

    def decoys(self, user: StoredUser | None) -> list[str]:
        """Hashes checked besides the user's own (and discarded), so that every name costs the same
        whichever source holds it, or none: the database's scrypt and the htpasswd file's bcrypt,
        each where that source did not supply the hash."""
        decoys = []
        if self._engine is not None and (user is None or bcrypt_cost(user.password_hash) is not None):
            decoys.append(passwords.dummy_hash())
        if self._htpasswd is not None and (user is None or bcrypt_cost(user.password_hash) is None):
            decoys.append(dummy_bcrypt(self._htpasswd.typical_cost()))
        return decoys

    async def find(self, name: str) -> StoredUser | None:
        if self._engine is not None:
            async with self._engine.connect() as conn:
                row = (await conn.execute(self._select, {"name": name})).first()
            if row is not None:
                return StoredUser(name, row.password_hash, bool(row.is_admin))
        if self._htpasswd is not None and (stored := self._htpasswd.get(name)) is not None:
            return StoredUser(name, stored)
        return None


def parse_basic(header: str) -> tuple[str, str] | None:
    """(user, password) from `Basic <base64>`; None if the header is another scheme."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("Malformed basic credentials.", challenge=CHALLENGE) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # RFC 7617: what older clients send without charset
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise AuthenticationFailed("Malformed basic credentials.", challenge=CHALLENGE)
    return user, password


class FairSlots:
    """The hash threads, handed out first come first served among client addresses, each address
    holding at most `per_address` places in that line."""

    def __init__(self, total: int, per_address: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_address = per_address
        self._addresses: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, address: str) -> AsyncIterator[None]:
        own, users = self._addresses.setdefault(address, (asyncio.Semaphore(self._per_address), [0]))
        users[0] += 1
        try:
            async with own, self._total:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._addresses[address]


class BasicAuthenticator:
    name = "basic"
    consumed = Consumed(headers=frozenset({"authorization"}))

    def __init__(self, sources: UserSources, ttl: float) -> None:
        self._sources = sources
        self._ttl = ttl
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Future[StoredUser | None]] = {}
        self._hashing = FairSlots(HASH_CONCURRENCY, PER_ADDRESS_HASHES)
        self._known: OrderedDict[bytes, float] = OrderedDict()

    def challenge(self) -> str:
        return CHALLENGE

    async def authenticate(self, request: web.Request) -> Identity | None:
        header = request.headers.get("Authorization")
        if header is None or (credentials := parse_basic(header)) is None:
            return None
        user = await self.check(*credentials, address=request.remote or "")
        if user is None:
            raise AuthenticationFailed(REFUSED, challenge=CHALLENGE)
        return Identity(subject=user.name, method=self.name, is_admin=user.is_admin)

    def known_good(self, request: web.Request) -> bool:
        """This exact user and password passed within KNOWN_GOOD_SECONDS (it is checked again all
        the same; this only decides whether a throttled address may have it checked)."""
        try:
            credentials = parse_basic(request.headers.get("Authorization", ""))
        except AuthenticationFailed:
            return False
        if credentials is None:
            return False
        passed = self._known.get(self._cache_key(*credentials))
        return passed is not None and time.monotonic() - passed < KNOWN_GOOD_SECONDS

    def _cache_key(self, name: str, password: str) -> bytes:
        return hmac.new(self._key, name.encode() + b"\0" + password.encode(), hashlib.sha256).digest()

    async def check(self, name: str, password: str, address: str = "") -> StoredUser | None:
        key = self._cache_key(name, password)
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is not None and now - entry.verified_at < self._ttl:
            if now - entry.checked_at < RECHECK:
                self._cache.move_to_end(key)
                return entry.user
            try:
                current = await self._sources.find(name)
            except sa.exc.SQLAlchemyError as exc:
                # The database hiccups: the password was right seconds ago; keep it for the TTL
                # rather than lock every basic-auth user out.
                log.warning("cannot re-check user %s (%s); using the verified password", name, type(exc).__name__)
                entry.checked_at = now
                return entry.user
            if current is not None and hmac.compare_digest(current.password_hash, entry.user.password_hash):
                entry.checked_at, entry.user = now, current  # is_admin may have changed
                return current
        self._cache.pop(key, None)
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(name, password, address))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(key, None))
        # shield: one caller going away must not cancel the check the others wait for.
        user = await asyncio.shield(pending)
        if user is not None:
            stamp = time.monotonic()
            self._cache[key] = _Entry(user, stamp, stamp)
            self._known[key] = stamp
            self._known.move_to_end(key)
            for bounded in (self._cache, self._known):
                while len(bounded) > MAX_ENTRIES:
                    bounded.popitem(last=False)
        return user

    async def _verify(self, name: str, password: str, address: str) -> StoredUser | None:
        user = await self._sources.find(name)
        decoys = self._sources.decoys(user)
        async with self._hashing.slot(address):
            ok = await asyncio.to_thread(_verify_with_decoys, user, decoys, password)
        return user if ok else None


def _verify_with_decoys(user: StoredUser | None, decoys: list[str], password: str) -> bool:
    """The user's own check, then the decoys' (whose outcome is ignored), in one thread."""
    ok = False
    for stored in ([user.password_hash] if user is not None else []) + decoys:
        try:
            matched = passwords.verify(stored, password)
        except passwords.UnsupportedHash:
            matched = False
        ok = ok or (matched and user is not None and stored == user.password_hash)
    return ok


@contextlib.asynccontextmanager
async def open_basic(app: web.Application) -> AsyncIterator[BasicAuthenticator]:
    config = app[keys.config]
    engine = app.get(keys.auth_engine)
    htpasswd = Htpasswd(config.htpasswd_file) if config.htpasswd_file else None
    yield BasicAuthenticator(UserSources(engine, htpasswd), config.basic_auth_cache_ttl)


METHOD = Method(name="basic", open=open_basic)
