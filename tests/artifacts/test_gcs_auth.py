"""GCS credentials: the metadata server and a service-account key file, each answered by a small
aiohttp server on loopback playing Google's side of that one exchange (the GCS emulator checks
no credentials, so these paths need their own counterpart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tracking_core.artifacts.gcs_auth import METADATA_PATH, SCOPE, TokenSource
from tracking_core.errors import ErrorCode, MlflowError


async def start(routes: web.RouteTableDef) -> TestServer:
    app = web.Application()
    app.add_routes(routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_metadata_server_token_is_fetched_once_and_cached() -> None:
    calls: list[str] = []
    routes = web.RouteTableDef()

    @routes.get(METADATA_PATH)
    async def token(request: web.Request) -> web.Response:
        calls.append(request.headers.get("Metadata-Flavor", ""))
        return web.json_response({"access_token": "meta-token", "expires_in": 3599, "token_type": "Bearer"})

    server = await start(routes)
    try:
        async with aiohttp.ClientSession() as session:
            source = TokenSource(session, env={"GCE_METADATA_HOST": f"127.0.0.1:{server.port}"})
            assert await source.headers() == {"Authorization": "Bearer meta-token"}
            assert await source.headers() == {"Authorization": "Bearer meta-token"}
        assert calls == ["Google"], "one request, with the header the metadata server requires"
    finally:
        await server.close()


async def test_service_account_key_file(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    seen: dict[str, Any] = {}
    routes = web.RouteTableDef()

    @routes.post("/token")
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        claims = jwt.decode(
            str(form["assertion"]), key.public_key(), algorithms=["RS256"], audience=str(request.url)
        )
        seen.update(claims, grant_type=form["grant_type"])
        return web.json_response({"access_token": "sa-token", "expires_in": 3600})

    server = await start(routes)
    try:
        key_file = tmp_path / "sa.json"
        key_file.write_text(json.dumps({
            "type": "service_account", "client_email": "tg@project.iam.gserviceaccount.com",
            "private_key": pem.decode(), "private_key_id": "k1",
            "token_uri": f"http://127.0.0.1:{server.port}/token",
        }))  # fmt: skip
        async with aiohttp.ClientSession() as session:
            source = TokenSource(session, env={"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})
            assert await source.headers() == {"Authorization": "Bearer sa-token"}
        assert seen["iss"] == "tg@project.iam.gserviceaccount.com" and seen["scope"] == SCOPE
        assert seen["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    finally:
        await server.close()


async def test_emulator_needs_no_token() -> None:
    async with aiohttp.ClientSession() as session:
        assert await TokenSource(session, env={"STORAGE_EMULATOR_HOST": "127.0.0.1:1"}).headers() == {}


async def test_failure_is_retryable_and_names_no_secret() -> None:
    routes = web.RouteTableDef()

    @routes.get(METADATA_PATH)
    async def broken(_request: web.Request) -> web.Response:
        return web.Response(status=500, text="secret-looking internals")

    server = await start(routes)
    try:
        async with aiohttp.ClientSession() as session:
            source = TokenSource(session, env={"GCE_METADATA_HOST": f"127.0.0.1:{server.port}"})
            with pytest.raises(MlflowError) as info:
                await source.headers()
        assert info.value.code == ErrorCode.TEMPORARILY_UNAVAILABLE
        assert "secret" not in info.value.message
    finally:
        await server.close()
