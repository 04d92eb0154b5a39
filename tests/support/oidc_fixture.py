"""A real OpenID Connect provider (`node tests/support/oidc/op.mjs`) on a free 127.0.0.1 port.

Import the fixture into a test module (`from tests.support.oidc_fixture import oidc_provider`)
or use `running_provider()` directly. The provider knows two clients (see op.mjs): `trackgate`
for browser sign-on, with the callbacks of `rp_ports` gateway replicas registered, and `ci-job`
for client-credentials JWTs (an external issuer's bearer tokens).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.services import free_port, missing

OP_DIR = Path(__file__).parent / "oidc"
CLIENT_ID = "trackgate"
CLIENT_SECRET = "trackgate-secret"
CI_CLIENT_ID = "ci-job"
CI_CLIENT_SECRET = "ci-secret"
API_AUDIENCE = "https://trackgate.test"
STATIC_PREFIX = "/mlflow"


@dataclass
class OIDCProvider:
    issuer: str
    process: subprocess.Popen[bytes]
    log_path: Path
    rp_ports: list[int] = field(default_factory=list)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    # The provider's own signing key, so tests can forge ID tokens exactly as it would sign them.
    signing_key: rsa.RSAPrivateKey | None = None
    signing_kid: str = ""

    def rp_url(self, replica: int = 0) -> str:
        """Base URL of gateway replica `replica`, whose callback the provider has registered."""
        return f"http://127.0.0.1:{self.rp_ports[replica]}"

    def gateway_args(self) -> list[str]:
        """`trackgate server` options for browser sign-on through this provider, users of example.test;
        the client secret goes in the environment (`gateway_env`)."""
        return [
            "--auth", "oidc",
            "--oidc-issuer-url", self.issuer,
            "--oidc-client-id", self.client_id,
            "--oidc-scopes", "openid,email,groups",
            "--oidc-email-domains", "example.test",
        ]  # fmt: skip

    def gateway_env(self) -> dict[str, str]:
        return {"TRACKGATE_OIDC_CLIENT_SECRET": self.client_secret}

    def discovery(self) -> dict[str, str]:
        return dict(requests.get(self.issuer + "/.well-known/openid-configuration", timeout=5).json())

    def client_credentials_token(self, scope: str = "api:read", resource: str = API_AUDIENCE) -> str:
        """An RS256 JWT access token for `ci-job` (sub = client id, aud = resource)."""
        response = requests.post(
            self.discovery()["token_endpoint"],
            auth=(CI_CLIENT_ID, CI_CLIENT_SECRET),
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
            timeout=5,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class _FormFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form" and self.action is None:
            self.action = dict(attrs).get("action")


def login_without_browser(
    session: requests.Session,
    start_url: str,
    login: str,
    *,
    seen: list[requests.Response] | None = None,
    stop_before: str | None = None,
) -> requests.Response:
    """Follow a sign-on from `start_url` by hand: redirects, the provider's login form, back to the
    gateway's callback and on. Returns the first response that is not a redirect (or the callback's
    own answer when it refuses); with `stop_before`, the redirect whose Location starts with it
    (e.g. the gateway's callback URL, to tamper with it). `seen` collects every response."""
    url, response = start_url, session.get(start_url, allow_redirects=False, timeout=10)
    for _ in range(20):
        if seen is not None:
            seen.append(response)
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            if stop_before is not None and url.startswith(stop_before):
                return response
            response = session.get(url, allow_redirects=False, timeout=10)
        elif 'name="login"' in response.text:
            finder = _FormFinder()
            finder.feed(response.text)
            assert finder.action, "the provider's login form has no action"
            url = urljoin(url, finder.action)
            response = session.post(
                url,
                data={"prompt": "login", "login": login, "password": "x"},
                allow_redirects=False,
                timeout=10,
            )
        else:
            return response
    raise AssertionError(f"sign-on did not finish; last URL {url}")


@contextlib.contextmanager
def running_provider(workdir: Path, rp_ports: list[int]) -> Iterator[OIDCProvider]:
    """Start op.mjs with the gateway callbacks of `rp_ports` registered; stop it afterwards."""
    node = shutil.which("node")
    if node is None:
        missing("node (Debian package nodejs), to run the OpenID provider")
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        missing("oidc-provider (run: npm ci --prefix tests/support/oidc)")
    port = free_port()
    # A signing key of our own rather than the fixed development key the package ships.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = f"test-{port}"
    jwk = {**RSAAlgorithm.to_jwk(key, as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}
    env = {
        **os.environ,
        "OP_PORT": str(port),
        # Each replica's callback, also under the static prefix /mlflow (--static-prefix tests).
        "RP_REDIRECTS": ",".join(
            f"http://127.0.0.1:{p}{prefix}/oauth2/callback" for p in rp_ports for prefix in ("", STATIC_PREFIX)
        ),
        "RP_LOGOUTS": ",".join(f"http://127.0.0.1:{p}/" for p in rp_ports),
        "OP_JWKS": json.dumps({"keys": [jwk]}),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"op-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([node, "op.mjs"], cwd=OP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    provider = OIDCProvider(f"http://127.0.0.1:{port}", process, log_path, list(rp_ports), signing_key=key,
                            signing_kid=kid)
    try:
        _wait_ready(provider)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(provider: OIDCProvider, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if provider.process.poll() is not None:
            raise RuntimeError(f"the OpenID provider exited early:\n{provider.log()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(provider.issuer + "/.well-known/openid-configuration", timeout=1).ok:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the OpenID provider is not ready after {timeout} s:\n{provider.log()}")


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    """One provider per test module, with callbacks registered for two gateway replicas."""
    with running_provider(tmp_path_factory.mktemp("oidc"), [free_port(), free_port()]) as provider:
        yield provider
