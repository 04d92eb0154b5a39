"""Finding 15 of issue 13: mlflow server's security middleware, with its flags, defaults and
variables, checked with the requests a browser sends (a rebound DNS name, a cross-site form or
fetch, a CORS preflight, a page framed by another site).

The default configuration runs as a real `trackgate server` with the real core, so a blocked
write is shown not to have happened; the other configurations use the stand-in core."""

from __future__ import annotations

import http.client
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from gateway.config import load
from gateway.security import CORS_BLOCKED_MSG, INVALID_HOST_MSG
from tests.server_process import RunningServer, trackgate_server

CREATE = "/api/2.0/mlflow/experiments/create"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=100"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with trackgate_server(tmp_path_factory.mktemp("browser")) as running:
        yield running


def raw(server_url: str, method: str, path: str, headers: dict[str, str], body: str | None = None
        ) -> tuple[int, dict[str, str], str]:
    """A request with exactly these headers (Host included), as a browser would send it."""
    host, port = server_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    data = body.encode() if body is not None else None
    if data is not None:
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    response = conn.getresponse()
    result = response.status, dict(response.getheaders()), response.read().decode()
    conn.close()
    return result


def experiment_names(server: RunningServer) -> list[str]:
    body = requests.get(server.url + SEARCH, timeout=30).json()
    return [e["name"] for e in body.get("experiments", [])]


def test_rebound_host_name_is_refused(server: RunningServer) -> None:
    status, _headers, body = raw(server.url, "GET", SEARCH, {"Host": "evil.example:5000"})
    assert status == 403 and INVALID_HOST_MSG in body
    # Loopback names and private addresses are served (mlflow's default), health probes always.
    port = server.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "10.1.2.3:8080", "192.168.0.7"):
        assert raw(server.url, "GET", SEARCH, {"Host": host})[0] == 200, host
    assert raw(server.url, "GET", "/healthz", {"Host": "evil.example"})[0] == 200


def test_cross_site_write_is_blocked_and_nothing_is_written(server: RunningServer) -> None:
    headers = {"Origin": "https://evil.example", "Host": server.url.removeprefix("http://")}
    status, _, body = raw(server.url, "POST", CREATE, headers, '{"name": "from-evil"}')
    assert status == 403 and CORS_BLOCKED_MSG in body
    assert "from-evil" not in experiment_names(server)
    # The same write from a localhost page (the UI's dev server) goes through.
    headers["Origin"] = "http://localhost:3000"
    status, response_headers, _ = raw(server.url, "POST", CREATE, headers, '{"name": "from-localhost"}')
    assert status == 200 and response_headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "from-localhost" in experiment_names(server)
    # The UI's own fetches at a private address carry its own origin: same origin, not blocked.
    same = {"Origin": "http://10.1.2.3:8080", "Host": "10.1.2.3:8080"}
    assert raw(server.url, "POST", CREATE, same, '{"name": "same-origin"}')[0] == 200


def test_cross_site_read_gets_no_cors_grant(server: RunningServer) -> None:
    headers = {"Origin": "https://evil.example", "Host": server.url.removeprefix("http://")}
    status, response_headers, _ = raw(server.url, "GET", SEARCH, headers)
    assert status == 200 and "Access-Control-Allow-Origin" not in response_headers  # the browser hides it


def test_preflight(server: RunningServer) -> None:
    host = server.url.removeprefix("http://")
    asked = {"Host": host, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = raw(server.url, "OPTIONS", CREATE, {**asked, "Origin": "http://127.0.0.1:8888"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8888"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "content-type"
    status, headers, _ = raw(server.url, "OPTIONS", CREATE, {**asked, "Origin": "https://evil.example"})
    assert status == 400 and "Access-Control-Allow-Origin" not in headers


def test_every_response_forbids_framing_by_other_sites(server: RunningServer) -> None:
    for path in ("/", SEARCH, "/healthz", "/no-such-page"):
        _, headers, _ = raw(server.url, "GET", path, {"Host": server.url.removeprefix("http://")})
        assert headers.get("X-Frame-Options") == "SAMEORIGIN", path
        assert headers.get("X-Content-Type-Options") == "nosniff", path


# -- other configurations, on the stand-in core ---------------------------------------------


async def get(gw: Any, path: str, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(gw.url + path, headers=headers) as r:
        await r.read()
        return r.status, r.headers


async def test_allowed_hosts_replaces_the_default(gateway_factory: Callable[..., Awaitable[Any]]) -> None:
    gw = await gateway_factory(allowed_hosts="mlflow.example.com,*.internal.example")
    assert (await get(gw, "/echo", Host="mlflow.example.com"))[0] == 200
    assert (await get(gw, "/echo", Host="app-1.internal.example"))[0] == 200
    assert (await get(gw, "/echo"))[0] == 403  # 127.0.0.1 is no longer in the list
    assert (await get(gw, "/readyz", Host="elsewhere"))[0] == 200


async def test_any_host_and_any_origin(gateway_factory: Callable[..., Awaitable[Any]]) -> None:
    gw = await gateway_factory(allowed_hosts="*", cors_allowed_origins="*")
    status, headers = await get(gw, "/echo", Host="anything.example", Origin="https://site.example")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers  # wildcard: never with credentials
    async with aiohttp.ClientSession() as s, s.post(gw.url + "/api/2.0/mlflow/x", headers={
            "Origin": "https://site.example"}) as r:
        assert r.status != 403  # nothing is blocked with *


async def test_listed_origin_gets_credentialed_cors(gateway_factory: Callable[..., Awaitable[Any]]) -> None:
    gw = await gateway_factory(cors_allowed_origins="https://notebook.example.com")
    _status, headers = await get(gw, "/echo", Origin="https://notebook.example.com")
    assert headers["Access-Control-Allow-Origin"] == "https://notebook.example.com"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/api/2.0/mlflow/x", headers={"Origin": "https://notebook.example.com"}) as r:
            assert r.status != 403
        async with s.post(gw.url + "/api/2.0/mlflow/x", headers={"Origin": "https://other.example.com"}) as r:
            assert r.status == 403


@pytest.mark.parametrize(("value", "expected"), [("DENY", "DENY"), ("sameorigin", "SAMEORIGIN"), ("NONE", None)])
async def test_x_frame_options(gateway_factory: Callable[..., Awaitable[Any]], value: str,
                               expected: str | None) -> None:
    gw = await gateway_factory(x_frame_options=value)
    assert (await get(gw, "/big"))[1].get("X-Frame-Options") == expected  # a streamed response too
    framed = await get(gw, "/static-files/lib/notebook-trace-renderer/index.html")  # Jupyter frames it
    assert "X-Frame-Options" not in framed[1]


async def test_disabled_security_middleware(gateway_factory: Callable[..., Awaitable[Any]]) -> None:
    gw = await gateway_factory(disable_security_middleware=True)
    status, headers = await get(gw, "/echo", Host="evil.example")
    assert status == 200 and "X-Frame-Options" not in headers


def test_mlflow_variables_are_honoured(tmp_path: Path) -> None:
    config = load({}, {"MLFLOW_SERVER_ALLOWED_HOSTS": "a.example,b.example",
                       "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": "https://c.example",
                       "MLFLOW_SERVER_X_FRAME_OPTIONS": "DENY",
                       "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "true"})
    assert config.allowed_hosts == ("a.example", "b.example")
    assert config.cors_allowed_origins == ("https://c.example",)
    assert (config.x_frame_options, config.disable_security_middleware) == ("DENY", True)
    trackgate_names = load({}, {"TRACKGATE_ALLOWED_HOSTS": "x.example", "MLFLOW_SERVER_ALLOWED_HOSTS": "y.example"})
    assert trackgate_names.allowed_hosts == ("x.example",)
