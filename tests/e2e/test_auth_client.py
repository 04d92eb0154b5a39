"""The official mlflow client through `trackgate server` with each way of authenticating, over
TLS: basic (MLFLOW_TRACKING_USERNAME/PASSWORD), a token trackgate issued and an external
issuer's JWT (MLFLOW_TRACKING_TOKEN), a client certificate (MLFLOW_TRACKING_CLIENT_CERT_PATH);
and the refusals, with the status, JSON body and WWW-Authenticate a client needs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import mlflow
import pytest
import requests
import sqlalchemy as sa
import trustme
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.gateway.support import cli
from tests.server_process import RunningServer, trackgate_server
from tests.support.oidc_fixture import API_AUDIENCE, OIDCProvider, oidc_provider  # noqa: F401

pytestmark = pytest.mark.slow

PASSWORD = "train-hard-2026"
ENV_NAMES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
             "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_INSECURE_TLS")


@dataclass
class Setup:
    server: RunningServer
    db_uri: str
    dir: Path
    ca: Path  # the server's and the client certificates' CA
    client_pem: Path  # CN=svc-trainer, key and certificate in one file
    stranger_pem: Path  # a client certificate from another CA
    token: str  # issued by `trackgate tokens issue`

    def url(self, path: str) -> str:
        return self.server.url + path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, oidc_provider: OIDCProvider) -> Iterator[Setup]:  # noqa: F811
    d = tmp_path_factory.mktemp("auth")
    ca, stranger_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(d / "ca.pem")
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_cert.cert_chain_pems[0].write_to_path(d / "server.pem")
    server_cert.private_key_pem.write_to_path(d / "server-key.pem")
    ca.issue_cert("svc-trainer.example.test", common_name="svc-trainer").private_key_and_cert_chain_pem.write_to_path(
        d / "client.pem")
    stranger_ca.issue_cert("svc-trainer.example.test", common_name="svc-trainer") \
        .private_key_and_cert_chain_pem.write_to_path(d / "stranger.pem")
    db_uri = f"sqlite:///{d}/trackgate.db"
    created = cli("users", "create", "alice", "--backend-store-uri", db_uri, stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    issued = cli("tokens", "issue", "--subject", "ci-deploy", "--ttl", "30d", "--backend-store-uri", db_uri)
    assert issued.returncode == 0, issued.stderr
    issuers = json.dumps([{"issuer": oidc_provider.issuer, "audience": API_AUDIENCE, "allowed_subjects": ["ci-*"]}])
    args = ["--backend-store-uri", db_uri, "--auth", "basic,bearer,mtls", "--tls-cert", str(d / "server.pem"),
            "--tls-key", str(d / "server-key.pem"), "--tls-client-ca", str(d / "ca.pem"),
            "--client-cert-mode", "optional", "--jwt-issuers", issuers,
            # Every identity here logs into the one shared experiment; permissions between callers
            # are tested in test_authz_matrix.py.
            "--default-permission", "EDIT"]
    with trackgate_server(d, *args, wait=False) as running:
        running.url = running.url.replace("http://", "https://")
        wait_ready(running, d / "ca.pem")
        yield Setup(running, db_uri, d, d / "ca.pem", d / "client.pem", d / "stranger.pem", issued.stdout.strip())


def wait_ready(server: RunningServer, ca: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log()
        try:
            if requests.get(server.url + "/readyz", verify=str(ca), timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready:\n{server.log()}")


@pytest.fixture
def client_env(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The mlflow client pointed at the server, trusting its CA, with no credential yet."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(setup.ca))
    mlflow.set_tracking_uri(setup.server.url)
    yield monkeypatch
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri("")


def log_a_run() -> Any:
    """What a training script does; returns the run as the server stored it."""
    mlflow.set_experiment("auth-e2e")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metric("loss", 0.5, step=1)
    return MlflowClient().get_run(run.info.run_id)


def assert_run_by(run: Any, subject: str) -> None:
    assert run.info.user_id == subject
    assert run.data.tags["mlflow.user"] == subject  # not the local OS user the client sent
    assert run.data.metrics["loss"] == 0.5


def test_basic_auth(setup: Setup, client_env: pytest.MonkeyPatch) -> None:
    client_env.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    client_env.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    assert_run_by(log_a_run(), "alice")


def test_trackgate_issued_token(setup: Setup, client_env: pytest.MonkeyPatch) -> None:
    assert setup.token.count(".") == 2 and "\n" not in setup.token  # stdout is only the token
    client_env.setenv("MLFLOW_TRACKING_TOKEN", setup.token)
    assert_run_by(log_a_run(), "ci-deploy")


def test_external_issuer_token(setup: Setup, client_env: pytest.MonkeyPatch,
                               oidc_provider: OIDCProvider) -> None:  # noqa: F811
    client_env.setenv("MLFLOW_TRACKING_TOKEN", oidc_provider.client_credentials_token())
    assert_run_by(log_a_run(), "ci-job")


def test_client_certificate(setup: Setup, client_env: pytest.MonkeyPatch) -> None:
    client_env.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", str(setup.client_pem))
    assert_run_by(log_a_run(), "svc-trainer")


def test_refusal_reaches_the_mlflow_client_as_unauthenticated(setup: Setup, client_env: pytest.MonkeyPatch) -> None:
    client_env.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    client_env.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(MlflowException) as raised:
        MlflowClient().search_experiments()
    assert raised.value.error_code == "UNAUTHENTICATED"
    assert "Invalid username or password" in str(raised.value)


# -- refusals, as raw HTTP, each with what a client needs to see -------------------------------------

def stored_signing_key(setup: Setup) -> Any:
    from cryptography.hazmat.primitives import serialization

    engine = sa.create_engine(setup.db_uri)
    with engine.connect() as conn:
        pem = conn.execute(sa.text("SELECT value FROM gateway_secrets WHERE name = 'token_signing_key'")).scalar_one()
    engine.dispose()
    return serialization.load_pem_private_key(pem.encode(), password=None)


def token_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "trackgate", "aud": "trackgate", "sub": "ci-deploy", "iat": now, "exp": now + 600,
              "jti": f"e2e-{time.monotonic_ns()}"}
    return {**claims, **overrides}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(setup: Setup) -> str:
    jwks = requests.get(setup.url("/.well-known/jwks.json"), verify=str(setup.ca), timeout=10).json()
    public = base64.urlsafe_b64decode(jwks["keys"][0]["x"] + "==")
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(token_claims()).encode())
    return f"{head}.{body}.{b64(hmac.new(public, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def refusal_cases(setup: Setup) -> dict[str, tuple[dict[str, Any], str, str]]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = stored_signing_key(setup)
    none = f"{b64(json.dumps({'alg': 'none'}).encode())}.{b64(json.dumps(token_claims()).encode())}."
    invalid = 'Bearer realm="trackgate", error="invalid_token"'
    basic = 'Basic realm="trackgate", charset="UTF-8"'
    return {
        # id: (request kwargs, message fragment, the one WWW-Authenticate challenge expected first)
        "no-credential": ({}, "Authentication required", basic),
        "wrong-password": ({"auth": ("alice", "wrong")}, "Invalid username or password", basic),
        "unknown-user": ({"auth": ("mallory", PASSWORD)}, "Invalid username or password", basic),
        "expired-token": ({"headers": {"Authorization": "Bearer " + jwt.encode(
            token_claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), key, algorithm="EdDSA")}},
            "expired", invalid),
        "wrong-audience": ({"headers": {"Authorization": "Bearer " + jwt.encode(
            token_claims(aud="another-service"), key, algorithm="EdDSA")}}, "audience", invalid),
        "alg-none": ({"headers": {"Authorization": "Bearer " + none}}, "alg value is not allowed", invalid),
        "wrong-key": ({"headers": {"Authorization": "Bearer " + jwt.encode(
            token_claims(), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA")}},
            "Signature verification failed", invalid),
        "hs256-with-public-key": ({"headers": {"Authorization": "Bearer " + hs256_with_public_key(setup)}},
                                  "alg value is not allowed", invalid),
        "untrusted-issuer": ({"headers": {"Authorization": "Bearer " + jwt.encode(
            token_claims(iss="https://evil.example"), key, algorithm="EdDSA")}}, "issuer is not trusted", invalid),
        "garbage-token": ({"headers": {"Authorization": "Bearer abc.def"}}, "not a JWT", invalid),
    }


CASE_IDS = ["no-credential", "wrong-password", "unknown-user", "expired-token", "wrong-audience", "alg-none",
            "wrong-key", "hs256-with-public-key", "untrusted-issuer", "garbage-token"]


@pytest.mark.parametrize("case", CASE_IDS)
def test_refusals(setup: Setup, case: str) -> None:
    kwargs, fragment, challenge = refusal_cases(setup)[case]
    response = requests.post(setup.url("/api/2.0/mlflow/runs/create"), json={"experiment_id": "0"},
                             verify=str(setup.ca), timeout=30, allow_redirects=False, **kwargs)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == "UNAUTHENTICATED" and fragment.lower() in body["message"].lower()
    assert response.headers["WWW-Authenticate"].startswith(challenge)
    assert PASSWORD not in response.text and "wrong" not in body["message"]  # no credential echoed


def test_revoked_token_is_refused(setup: Setup) -> None:
    issued = cli("tokens", "issue", "--subject", "short-lived", "--ttl", "1h", "--backend-store-uri", setup.db_uri)
    token = issued.stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    url = setup.url("/api/2.0/mlflow/experiments/search?max_results=1")
    assert requests.get(url, headers=headers, verify=str(setup.ca), timeout=30).status_code == 200
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    revoked = cli("tokens", "revoke", jti, "--backend-store-uri", setup.db_uri)
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 30  # servers re-read revocations every few seconds
    while (response := requests.get(url, headers=headers, verify=str(setup.ca), timeout=30)).status_code == 200:
        assert time.monotonic() < deadline, "the revoked token is still accepted"
        time.sleep(0.5)
    assert response.status_code == 401 and "revoked" in response.json()["message"]


def test_certificate_from_another_ca_is_refused_in_the_handshake(setup: Setup) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(setup.url("/api/2.0/mlflow/experiments/search"), cert=str(setup.stranger_pem),
                     verify=str(setup.ca), timeout=30)


def test_spoofed_identity_headers_do_not_change_who_created_the_run(setup: Setup) -> None:
    headers = {"X-Trackgate-Subject": "mallory", "X_Trackgate_Subject": "mallory", "X-Forwarded-User": "mallory",
               "X-Trackgate-Auth-Method": "mtls"}
    response = requests.post(
        setup.url("/api/2.0/mlflow/runs/create"), auth=("alice", PASSWORD), headers=headers, verify=str(setup.ca),
        json={"experiment_id": "0", "user_id": "mallory", "tags": [{"key": "mlflow.user", "value": "mallory"}]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    info = response.json()["run"]["info"]
    tags = {t["key"]: t["value"] for t in response.json()["run"]["data"]["tags"]}
    assert (info["user_id"], tags["mlflow.user"]) == ("alice", "alice")


def test_health_and_version_need_no_credential(setup: Setup) -> None:
    for path in ("/healthz", "/readyz", "/version", "/health", "/.well-known/jwks.json"):
        assert requests.get(setup.url(path), verify=str(setup.ca), timeout=10).status_code == 200, path


def test_plain_http_is_not_served(setup: Setup) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(setup.url("/healthz").replace("https://", "http://"), timeout=10)
