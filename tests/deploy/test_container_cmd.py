"""The image's CMD, run directly on this machine with the environment Cloud Run gives it.

No container runtime is needed: the Dockerfile's final-stage ENV, the Cloud Run service's env
(secrets filled with test values, the database URL in Cloud SQL's Unix-socket form pointing at
this machine's PostgreSQL socket, gs:// served by a GCS emulator) and PORT, then the exec-form
CMD as Cloud Run would start it. It must become ready on $PORT and refuse anonymous API calls.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.artifacts.stores import gcs_emulator
from tests.deploy.manifests import CLOUD_RUN, containers, dockerfile_cmd, dockerfile_env, documents
from tests.server_process import stop
from tests.services import free_port, missing, throwaway_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PG_SOCKET_DIR = Path("/var/run/postgresql")


def _pem_ed25519() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def cloudsql_socket() -> Iterator[str]:
    """A /cloudsql/PROJECT:REGION:INSTANCE-style directory holding this machine's PostgreSQL socket
    (short, under /tmp: a Unix socket path may not exceed 107 bytes)."""
    if not (PG_SOCKET_DIR / ".s.PGSQL.5432").exists():
        missing(f"PostgreSQL's Unix socket in {PG_SOCKET_DIR}")
    root = Path(tempfile.mkdtemp(prefix="tg-", dir="/tmp"))
    instance = root / "cloudsql" / "my-project:europe-west1:trackgate-db"
    instance.parent.mkdir()
    instance.symlink_to(PG_SOCKET_DIR)
    try:
        yield str(instance)
    finally:
        shutil.rmtree(root)


def cloud_run_env(database_url: str, bucket: str, port: int) -> dict[str, str]:
    (service,) = documents(CLOUD_RUN)
    (container,) = containers(service)
    fill = {
        "TRACKGATE_BACKEND_STORE_URI": database_url,
        "TRACKGATE_OIDC_CLIENT_SECRET": secrets.token_urlsafe(24),
        "TRACKGATE_COOKIE_SECRET": base64.b64encode(secrets.token_bytes(32)).decode(),
        "TRACKGATE_TOKEN_SIGNING_KEY": _pem_ed25519(),
    }
    env = dict(dockerfile_env())
    env.pop("PATH", None)  # the image's virtualenv; here the test environment's
    for entry in container["env"]:
        if "valueFrom" in entry:
            env[entry["name"]] = fill[entry["name"]]  # KeyError: a secret this test does not know
        else:
            env[entry["name"]] = entry["value"]
    env["TRACKGATE_ARTIFACTS_DESTINATION"] = env["TRACKGATE_ARTIFACTS_DESTINATION"].replace("BUCKET", bucket)
    env["PORT"] = str(port)  # Cloud Run sets PORT; the image's 8080 is the default
    return env


def test_cmd_with_the_cloud_run_environment_becomes_ready_on_port(tmp_path: Path, cloudsql_socket: str) -> None:
    command = dockerfile_cmd()
    executable = shutil.which(command[0])
    assert executable, f"{command[0]} is not installed in this environment (pip install -e .)"
    with throwaway_postgres() as admin_url, gcs_emulator() as gcs:
        database = admin_url.rsplit("/", 1)[1]
        # Cloud SQL's form: no host in the authority, the socket directory in ?host=.
        url = f"postgresql://postgres:unused-password@/{database}?host={cloudsql_socket}"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
        env.update(cloud_run_env(url, gcs.bucket, port))
        env.update(gcs.env)
        log_path = tmp_path / "server.log"
        started = time.monotonic()
        with open(log_path, "wb") as log:
            process = subprocess.Popen([executable, *command[1:]], stdout=log, stderr=subprocess.STDOUT,
                                       env=env, cwd=tmp_path)
        try:
            base = f"http://127.0.0.1:{port}"
            ready = None
            while time.monotonic() - started < 60 and process.poll() is None:
                try:
                    ready = requests.get(base + "/readyz", timeout=2)
                    if ready.status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                time.sleep(0.1)
            assert ready is not None and ready.status_code == 200, log_path.read_text()
            # Bound to 0.0.0.0 (TRACKGATE_HOST from the image), not only loopback.
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            # Authentication is on (bearer + oidc): an anonymous API call to the service's public name is
            # refused in MLflow's shape; a Host the service does not answer to is refused before that.
            search = base + "/api/2.0/mlflow/experiments/search?max_results=1"
            public_host = env["TRACKGATE_ALLOWED_HOSTS"].split(",")[0]
            refused = requests.get(search, headers={"Accept": "application/json", "Host": public_host}, timeout=5)
            assert refused.status_code == 401 and "error_code" in refused.json()
            rebound = requests.get(search, headers={"Accept": "application/json", "Host": "evil.example"}, timeout=5)
            assert rebound.status_code == 403
            # Every log line is JSON (TRACKGATE_LOG_FORMAT=json from the image) and none holds a secret.
            text = log_path.read_text()
            for secret_name in ("TRACKGATE_OIDC_CLIENT_SECRET", "TRACKGATE_COOKIE_SECRET"):
                assert env[secret_name] not in text
            assert "unused-password" not in text
        finally:
            stop(process)
    assert process.returncode == 0, log_path.read_text()  # SIGTERM: drained, exit 0
