"""The gateway's own error responses: MLflow's JSON shape, every header kept (repeated ones too)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from gateway.app import error_middleware, request_id_middleware

CHALLENGES = ['Basic realm="trackgate"', 'Bearer realm="trackgate"']


async def refuse(request: web.Request) -> web.Response:
    headers = CIMultiDict([("WWW-Authenticate", c) for c in CHALLENGES] + [("Content-Type", "text/plain")])
    raise web.HTTPUnauthorized(reason="no", headers=headers)


async def test_an_http_error_keeps_its_repeated_headers() -> None:
    app = web.Application(middlewares=[request_id_middleware, error_middleware])
    app.router.add_get("/", refuse)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/")
        assert response.status == 401
        assert response.headers.getall("WWW-Authenticate") == CHALLENGES
        assert response.content_type == "application/json"
        assert await response.read() == b'{"error_code": "UNAUTHENTICATED", "message": "no"}'
