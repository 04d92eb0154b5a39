"""Helpers that mint credentials directly (STYLE 13): users in a database, tokens with any
claims and any key, client certificates from a test CA; so most auth tests need no login dance."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.app import build_gateway_app
from gateway.auth import passwords
from gateway.config import load
from gateway.server import start, stop

PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    """A real scrypt hash, made once per test run (each takes up to a second)."""
    return passwords.hash_password(password)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def prepared_database(directory: Path) -> str:
    """A fresh SQLite tracking database at the current schema; returns its URI."""
    from tracking_core.store import schema

    uri = f"sqlite:///{directory}/tracking.db"
    asyncio.run(schema.prepare(load({"backend_store_uri": uri}, env={})))
    return uri


def add_user(uri: str, name: str, password_hash: str, *, is_admin: bool = False) -> None:
    from tracking_core.store.tables import users

    engine = sa.create_engine(uri)
    now = int(time.time() * 1000)
    with engine.begin() as conn:
        conn.execute(users.insert().values(name=name, password_hash=password_hash, is_admin=is_admin,
                                           created_time=now, password_changed_time=now))
    engine.dispose()


def set_password_hash(uri: str, name: str, password_hash: str) -> None:
    from tracking_core.store.tables import users

    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.name == name).values(password_hash=password_hash))
    engine.dispose()


def ed25519_pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "trackgate", "aud": "trackgate", "sub": "ci-bot", "iat": now, "nbf": now,
            "exp": now + 600, "jti": f"jti-{time.monotonic_ns()}"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(private_pem: str, algorithm: str = "EdDSA", headers: dict[str, Any] | None = None,
         **overrides: Any) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return jwt.encode(claims(**overrides), key, algorithm=algorithm, headers=headers)


def unsigned(**overrides: Any) -> str:
    """alg=none: a token with no signature at all."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    import json

    return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims(**overrides)).encode())}."


@contextlib.asynccontextmanager
async def running_gateway(directory: Path, **settings: Any) -> AsyncIterator[Any]:
    """A gateway over the stand-in core, with a prepared database holding alice; for fixtures
    wider than one test (gateway_factory is per test)."""
    from tests.gateway.conftest import Gateway
    from tests.gateway.support import FAKE_CORE, no_schema
    from tests.services import free_port

    uri = await asyncio.to_thread(prepared_database, directory)
    add_user(uri, "alice", password_hash(PASSWORD))
    port = free_port()
    config = load({"port": port, "backend_store_uri": uri, **settings}, env={})
    app = build_gateway_app(config, core_command=FAKE_CORE, prepare_schema=no_schema)
    runner = await start(config, app)
    try:
        yield Gateway(runner, app, port)
    finally:
        await stop(runner)
